"""``/_sandbox/*``: the simulator's own control surface (not part of Twilio, no auth).

Tests and operators use it to look at what the app did (state, REST requests, webhook
deliveries), to act like the phone network (inbound texts, state changes, answering calls) and
to inject faults into the REST API.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.httpserver import FaultError
from sandbox.twilio_sim import phone
from sandbox.twilio_sim.context import sim

bp = Blueprint("control", __name__, url_prefix="/_sandbox")


def _json() -> dict[str, Any]:
    payload = request.get_json(silent=True)
    if payload is None and request.get_data():
        raise phone.BadRequest("body must be JSON")
    if payload is not None and not isinstance(payload, dict):
        raise phone.BadRequest("body must be a JSON object")
    return payload or {}


@bp.errorhandler(phone.BadRequest)
@bp.errorhandler(FaultError)
def _bad_request(exc: Exception) -> tuple[Response, int]:
    return jsonify({"error": str(exc)}), 400


@bp.get("/state")
def state() -> dict[str, Any]:
    return sim().store.dump()


@bp.post("/reset")
def reset() -> dict[str, Any]:
    sim().reset()
    return {"ok": True}


@bp.get("/faults")
def list_faults() -> dict[str, Any]:
    return {"faults": sim().faults.pending()}


@bp.post("/faults")
def add_fault() -> tuple[dict[str, Any], int]:
    payload = _json()
    fault = sim().faults.add(payload)
    return {"fault": fault.__dict__, "faults": sim().faults.pending()}, 201


@bp.delete("/faults")
def clear_faults() -> dict[str, Any]:
    sim().faults.clear()
    return {"faults": []}


@bp.get("/requests")
def list_requests() -> Response:
    s = sim()
    with s.requests_lock:
        items = list(s.requests)
    return jsonify(items)


@bp.get("/webhooks")
def list_webhooks() -> Response:
    return jsonify(sim().webhooks.history())


@bp.get("/webhooks/in_flight")
def webhooks_in_flight() -> dict[str, Any]:
    return {"in_flight": sim().webhooks.in_flight}


@bp.post("/inbound")
def inbound() -> dict[str, Any]:
    return phone.text_in(sim(), _json())


@bp.post("/state_updated")
def state_updated() -> dict[str, Any]:
    return phone.state_updated(sim(), _json())


@bp.post("/calls")
def call_in() -> dict[str, Any]:
    return phone.call_in(sim(), _json())


@bp.post("/calls/<sid>")
def call_status(sid: str) -> dict[str, Any]:
    return phone.call_status(sim(), sid, _json())


@bp.get("/calls/<sid>/log")
def call_log(sid: str) -> dict[str, Any]:
    return phone.call_log(sim(), sid)


@bp.post("/calls/<sid>/speak")
def speak(sid: str) -> dict[str, Any]:
    return phone.speak(sim(), sid, _json())


@bp.get("/phones")
def phones() -> dict[str, Any]:
    return {"phones": {n: b.view() for n, b in sim().phones.items()}}


@bp.post("/phones/<number>")
def set_phone(number: str) -> dict[str, Any]:
    return phone.set_phone(sim(), number, _json())


@bp.route("/settings", methods=["GET", "POST"])
def settings() -> dict[str, Any]:
    return phone.settings(sim(), _json() if request.method == "POST" else {})
