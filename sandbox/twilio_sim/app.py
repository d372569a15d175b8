"""The Flask app: Basic auth, faults and a request log in front of the REST resources.

Every REST path needs HTTP Basic auth with the account SID and auth token, as Twilio does;
``/_sandbox/*`` does not. A matching fault is applied after authentication: it may stall the
request, fail it before it takes effect, or (``after: true``) let it take effect and still
answer with the error, the "lost response" case that makes clients retry a done write.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.twilio_sim import calls, control, conversations, messages
from sandbox.twilio_sim.context import Sim, sim
from sandbox.twilio_sim.errors import TwilioError, error_response
from sandbox.twilio_sim.store import SimConfig

LOGGED_HEADERS = ("X-Twilio-Webhook-Enabled", "User-Agent", "Content-Type")


def create_app(cfg: SimConfig) -> Flask:
    app = Flask("twilio_sim")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["twilio_sim"] = Sim.create(cfg)
    app.register_blueprint(conversations.bp)
    app.register_blueprint(calls.bp)
    app.register_blueprint(messages.bp)
    app.register_blueprint(control.bp)
    app.before_request(_guard)
    app.after_request(_finish)

    @app.errorhandler(TwilioError)
    def _twilio_error(exc: TwilioError) -> Response:
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if request.path.startswith("/_sandbox/"):
            resp = jsonify({"error": exc.description})
            resp.status_code = exc.code or 500
            return resp
        if exc.code == 404:
            return error_response(
                404, 20404, f"The requested resource {request.path} was not found"
            )
        if exc.code == 405:
            return error_response(405, 20004, "Method not allowed")
        return error_response(exc.code or 500, None, exc.description)

    return app


def _authorized() -> bool:
    auth = request.authorization
    cfg = sim().cfg
    return bool(
        auth
        and auth.type == "basic"
        and hmac.compare_digest(auth.username or "", cfg.account_sid)
        and hmac.compare_digest(auth.password or "", cfg.auth_token)
    )


def _guard() -> Response | None:
    if request.path.startswith("/_sandbox/"):
        return None
    s = sim()
    entry: dict[str, Any] = {
        "time": time.time(),
        "method": request.method,
        "path": request.path,
        "query": request.args.to_dict(flat=False),
        "form": request.form.to_dict(flat=False),
        "headers": {h: request.headers[h] for h in LOGGED_HEADERS if h in request.headers},
        "status": None,
    }
    with s.requests_lock:
        s.requests.append(entry)
    g.log_entry = entry
    if not _authorized():
        return error_response(401, 20003, "Authenticate")
    fault = s.faults.take(request.method, request.path)
    if fault is None:
        return None
    entry["fault"] = {"status": fault.status, "delay_seconds": fault.delay_seconds}
    fault.stall()
    if fault.fails and fault.after:
        g.fault_after = fault
        return None
    if fault.fails:
        return error_response(int(fault.status or 500), fault.code, fault.message)
    return None


def _finish(response: Response) -> Response:
    fault = g.pop("fault_after", None)
    if fault is not None and response.status_code < 400:
        response = error_response(int(fault.status or 500), fault.code, fault.message)
    entry = g.pop("log_entry", None)
    if entry is not None:
        entry["status"] = response.status_code
    return response
