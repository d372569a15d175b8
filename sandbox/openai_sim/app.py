"""The Flask app: ``POST /v1/chat/completions`` (+ ``GET /v1/models``) and ``/_sandbox/*``.

Order of checks follows the real service: bearer key (401), then an injected fault (stall
and/or 429/5xx with the real error bodies), then JSON and parameter validation, then the
deterministic completion. Every completion request is logged, newest last, before any stall,
so a test can see a request that is still in flight.
"""

from __future__ import annotations

import collections
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.httpserver import FaultBook, FaultError
from sandbox.openai_sim import chat
from sandbox.openai_sim.validate import OpenAIError, validate

MODELS = ("gpt-5.5", "gpt-5.5-mini", "gpt-5", "gpt-5-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4o")
BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please contact "
    "us through our help center at help.openai.com.)"
)
NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)


@dataclass
class ChatSim:
    api_key: str
    faults: FaultBook = field(default_factory=FaultBook)
    log: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=2000)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        self.faults.clear()
        with self.lock:
            self.log.clear()


def _sim() -> ChatSim:
    return current_app.extensions["openai_sim"]


def _masked(key: str) -> str:
    return key[:3] + "*" * max(len(key) - 7, 3) + key[-4:] if len(key) > 8 else "*" * len(key)


def _error(status: int, message: str, type_: str, code: str | None = None) -> OpenAIError:
    return OpenAIError(status, message, None, code, type_)


def fault_error(status: int, model: str, message: str | None) -> OpenAIError:
    """The real bodies for the statuses a client has to survive."""
    if status == 429:
        text = message or (
            f"Rate limit reached for {model} in organization org-sandbox on requests per min "
            "(RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        )
        return _error(429, text, "requests", "rate_limit_exceeded")
    if status == 500:
        text = message or "The server had an error while processing your request. Sorry about that!"
        return _error(500, text, "server_error")
    if status == 503:
        return _error(503, message or "The server is overloaded or not ready yet.", "server_error")
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return _error(status, message or f"Simulated error (HTTP {status})", kind)


def _respond(payload: dict[str, Any], status: int, started: float) -> Response:
    resp = jsonify(payload)
    resp.status_code = status
    resp.headers["x-request-id"] = "req_" + secrets.token_hex(16)
    resp.headers["openai-version"] = "2020-10-01"
    resp.headers["openai-processing-ms"] = str(int((time.monotonic() - started) * 1000))
    return resp


api = Blueprint("api", __name__, url_prefix="/v1")


@api.post("/chat/completions")
def chat_completions() -> Response:
    started = time.monotonic()
    s = _sim()
    raw = request.get_data(as_text=True)
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw
    entry: dict[str, Any] = {"time": time.time(), "path": request.path, "body": body}
    with s.lock:
        s.log.append(entry)
    try:
        _authorize(s)
        fault = s.faults.take(request.method, request.path)
        if fault is not None:
            entry["fault"] = {"status": fault.status, "delay_seconds": fault.delay_seconds}
            fault.stall()
            if fault.fails:
                model = body.get("model", "") if isinstance(body, dict) else ""
                raise fault_error(int(fault.status or 500), str(model), fault.message)
        if isinstance(body, str):
            raise OpenAIError(400, BAD_JSON)
        validate(body)
        payload, status = chat.completion(body), 200
    except OpenAIError as exc:
        payload, status = exc.body, exc.status
    entry["status"] = status
    return _respond(payload, status, started)


def _authorize(s: ChatSim) -> None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header[7:].strip():
        raise OpenAIError(401, NO_KEY)
    key = header[7:].strip()
    if not hmac.compare_digest(key, s.api_key):
        raise OpenAIError(
            401,
            f"Incorrect API key provided: {_masked(key)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            None,
            "invalid_api_key",
        )


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}


@api.get("/models")
def list_models() -> Response:
    try:
        _authorize(_sim())
    except OpenAIError as exc:
        return _respond(exc.body, exc.status, time.monotonic())
    return _respond({"object": "list", "data": [_model(m) for m in MODELS]}, 200, time.monotonic())


control = Blueprint("control", __name__, url_prefix="/_sandbox")


@control.get("/requests")
def list_requests() -> Response:
    s = _sim()
    with s.lock:
        return jsonify(list(s.log))


@control.post("/reset")
def reset() -> dict[str, Any]:
    _sim().reset()
    return {"ok": True}


@control.get("/faults")
def list_faults() -> dict[str, Any]:
    return {"faults": _sim().faults.pending()}


@control.post("/faults")
def add_fault() -> tuple[dict[str, Any], int]:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return {"error": "body must be a JSON object"}, 400
    try:
        fault = _sim().faults.add(payload)
    except FaultError as exc:
        return {"error": str(exc)}, 400
    return {"fault": fault.__dict__, "faults": _sim().faults.pending()}, 201


@control.delete("/faults")
def clear_faults() -> dict[str, Any]:
    _sim().faults.clear()
    return {"faults": []}


def create_app(api_key: str) -> Flask:
    app = Flask("openai_sim")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["openai_sim"] = ChatSim(api_key)
    app.register_blueprint(api)
    app.register_blueprint(control)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if request.path.startswith("/_sandbox/"):
            resp = jsonify({"error": exc.description})
        else:
            message = f"Invalid URL ({request.method} {request.path})"
            resp = jsonify(_error(exc.code or 500, message, "invalid_request_error").body)
        resp.status_code = exc.code or 500
        return resp

    return app
