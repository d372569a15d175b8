"""The simulator's control endpoints, for tests and operators: plain HTTP ``GET`` with a query
string on the WebSocket's port (the ``websockets`` server hands only GET requests to its HTTP
hook). Every answer is JSON; a bad parameter is a 400 saying which.

``GET /healthz``
    ``{"status": "ok"}``.
``GET /_sandbox/sessions``
    ``{"sessions": [record, ...]}``, oldest first: per WebSocket its ``id`` (the Live session id
    once started, else null), ``open``, ``closed_code``, ``closed_reason``, ``session`` (the
    resolved config sent in ``session.started``), ``events_received`` (counts by type),
    ``events`` (every client event except audio appends, as received), ``errors`` (``code``,
    ``param``, ``message`` of each ``error`` sent), ``audio_in_ms``, ``muted``, ``speech`` (VAD
    spans), ``caller_turns`` (``text``, ``start_ms``, ``end_ms``), ``turns`` (the model's speech:
    ``text``, ``reason`` (instructions, commentary, reply, delegation, acknowledgement,
    fixture), ``status`` (speaking, done, yielded, replaced, closed), ``spoken``, ``audio_ms``,
    ``start_ms``), ``appended`` (instructions/thinking/commentary received), ``delegations``,
    ``tool_calls``, ``tool_outputs``, ``tool_calls_refused``, ``usage_events``, ``injected``
    (frames sent by ``/_sandbox/inject``), ``barge_in_sent_ns`` (``--echo`` only).
``GET /_sandbox/tool_outputs``
    ``{"tool_outputs": [...]}``: every ``function_call_output`` accepted, all sessions, in order
    (``session_id``, ``delegation_id``, ``call_id``, ``name``, ``arguments``, ``output``).
``GET /_sandbox/reset``
    Forget closed sessions' records, the script, faults and settings (open sessions go on).
``GET /_sandbox/caller_says?text=transfer me to a person``
    The transcript of the next caller turn (any session). Queue several for several turns.
``GET /_sandbox/call_tool?name=end_call&arguments={"reason":"done"}``
    The next delegated caller turn calls this tool (``arguments`` optional: filled from the
    tool's schema). ``GET /_sandbox/call_tools?calls=[{"name":..,"arguments":{..}},..]`` makes
    the next turn call several at once (one batch: every call needs an output).
``GET /_sandbox/faults?reject_connects=N&drop_after_ms=MS&drop_now=1``
    Refuse the next N handshakes with 503; drop (TCP abort, no ``session.closed``) every new
    connection MS after it opens (``drop_after_ms=null`` stops that); drop the open ones now.
``GET /_sandbox/end?reason=expired|content|remote_hangup|connection_lost[&session=ID]``
    End open sessions from the server side: ``session.closed`` with that reason, then close
    (code 1000); ``connection_lost`` aborts the TCP connection with no event, as a lost
    connection does.
``GET /_sandbox/error?code=C&message=M[&type=server_error][&param=P][&session=ID]``
    Send an ``error`` event (the session goes on), e.g. a moderation cut or a server error.
``GET /_sandbox/inject?raw=TEXT[&session=ID]``
    Send ``TEXT`` as one text frame, verbatim and unchecked: a malformed or unknown server
    event for a client's attack tests (``raw={"type":"session.new_thing"}``, ``raw={nope``).
``GET /_sandbox/usage[?session=ID]``
    Send ``session.usage.updated`` now.
``GET /_sandbox/settings?usage_interval_s=S&lifetime_s=S``
    How often sessions report usage, and how long new sessions live (``expires_at``; then
    ``session.closed`` ``expired``). Defaults 5 s and 3600 s.
``GET /_sandbox/models?shutdown=gpt-live-1:2026-12-01`` (``shutdown=gpt-live-1:`` clears it)
    A shutdown date for a model: from that day ``session.start`` with it is ``model_not_found``.
"""

from __future__ import annotations

import datetime
import http
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from sandbox.live_sim.config import MODELS

if TYPE_CHECKING:
    from sandbox.live_sim.server import Simulator
    from sandbox.live_sim.session import Session

END_REASONS = ("expired", "content", "remote_hangup", "connection_lost")


def json_response(status: int, body: Any) -> Response:
    data = orjson.dumps(body)
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return Response(status, http.HTTPStatus(status).phrase, headers, data)


def openai_error(status: int, message: str, code: str | None, param: str | None = None) -> Response:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return json_response(status, {"error": error})


def _bad(message: str) -> Response:
    return json_response(400, {"error": message})


async def control(sim: Simulator, request: Request) -> Response:
    parts = urlsplit(request.path)
    path, query = parts.path, parse_qs(parts.query)

    def one(name: str, default: str = "") -> str:
        return (query.get(name) or [default])[0]

    if path == "/healthz":
        return json_response(200, {"status": "ok"})
    if path == "/_sandbox/sessions":
        return json_response(200, {"sessions": [s.record for s in sim.sessions]})
    if path == "/_sandbox/tool_outputs":
        outputs = [{"session_id": s.record["id"], **o} for s in sim.sessions
                   for o in s.record["tool_outputs"]]  # fmt: skip
        return json_response(200, {"tool_outputs": outputs})
    if path == "/_sandbox/reset":
        sim.reset()
        return json_response(200, {"ok": True})
    if path == "/_sandbox/caller_says":
        if not one("text").strip():
            return _bad("text is required")
        sim.script.caller_says.append(one("text").strip())
        return json_response(200, sim.script.view())
    if path in ("/_sandbox/call_tool", "/_sandbox/call_tools"):
        return _script_tools(sim, path, one)
    if path == "/_sandbox/faults":
        return await _faults(sim, query, one)
    if path in ("/_sandbox/end", "/_sandbox/error", "/_sandbox/usage", "/_sandbox/inject"):
        return await _to_sessions(sim, path, one)
    if path == "/_sandbox/settings":
        try:
            for name in ("usage_interval_s", "lifetime_s"):
                if name in query:
                    value = float(one(name))
                    if value <= 0:
                        return _bad(f"{name} must be positive")
                    setattr(sim.settings, name, value)
        except ValueError:
            return _bad("usage_interval_s and lifetime_s are numbers of seconds")
        settings = sim.settings
        return json_response(200, {"usage_interval_s": settings.usage_interval_s,
                                   "lifetime_s": settings.lifetime_s})  # fmt: skip
    if path == "/_sandbox/models":
        model, _, day = one("shutdown").partition(":")
        if model not in MODELS:
            return _bad(f"shutdown=MODEL:YYYY-MM-DD with MODEL one of {', '.join(MODELS)}")
        if not day:
            sim.settings.shutdowns.pop(model, None)
        else:
            try:
                sim.settings.shutdowns[model] = datetime.date.fromisoformat(day)
            except ValueError:
                return _bad("the shutdown date must be YYYY-MM-DD")
        shutdowns = {m: d.isoformat() for m, d in sim.settings.shutdowns.items()}
        return json_response(200, {"shutdowns": shutdowns})
    return json_response(404, {"error": f"unknown control path {path}"})


def _script_tools(sim: Simulator, path: str, one: Any) -> Response:
    try:
        if path == "/_sandbox/call_tool":
            raw = one("arguments")
            calls = [{"name": one("name"), "arguments": orjson.loads(raw) if raw else None}]
        else:
            calls = orjson.loads(one("calls", "[]"))
    except orjson.JSONDecodeError:
        return _bad("arguments/calls must be JSON")
    if not isinstance(calls, list) or not calls:
        return _bad("calls must be a non-empty JSON array")
    batch = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            return _bad("every call needs a name")
        arguments = call.get("arguments")
        if arguments is not None and not isinstance(arguments, dict):
            return _bad("arguments must be a JSON object")
        batch.append((call["name"], arguments))
    sim.script.tool_calls.append(batch)
    return json_response(200, sim.script.view())


async def _faults(sim: Simulator, query: dict[str, list[str]], one: Any) -> Response:
    try:
        if "reject_connects" in query:
            sim.reject_connects = int(one("reject_connects"))
        if "drop_after_ms" in query:
            value = one("drop_after_ms")
            sim.drop_after_ms = None if value in ("", "null", "none") else float(value)
    except ValueError:
        return _bad("reject_connects and drop_after_ms are numbers")
    if "drop_now" in query:
        for conn in list(sim.conns.values()):
            conn.transport.abort()
    return json_response(200, {"reject_connects": sim.reject_connects,
                               "drop_after_ms": sim.drop_after_ms})  # fmt: skip


async def _to_sessions(sim: Simulator, path: str, one: Any) -> Response:
    wanted = one("session")
    targets: list[Session] = [
        s
        for s in sim.conns
        if s.started_at is not None and (not wanted or s.record["id"] == wanted)
    ]
    if wanted and not targets:
        return json_response(404, {"error": f"no open session {wanted}"})
    if path == "/_sandbox/end":
        reason = one("reason")
        if reason not in END_REASONS:
            return _bad(f"reason must be one of {', '.join(END_REASONS)}")
        for session in targets:
            if reason == "connection_lost":
                session.record["closed_reason"] = "connection_lost (dropped)"
                sim.conns[session].transport.abort()
            else:
                await session.end(reason)
    elif path == "/_sandbox/error":
        if not one("code") or not one("message"):
            return _bad("code and message are required")
        for session in targets:
            await session.error(one("code"), one("message"), one("param") or None, None,
                                kind=one("type", "server_error"))  # fmt: skip
    elif path == "/_sandbox/inject":
        if not one("raw"):
            return _bad("raw (the frame's text) is required")
        for session in targets:
            session.record["injected"].append(one("raw"))
            await sim.conns[session].send(one("raw"))
    else:
        for session in targets:
            await session.usage_now()
    return json_response(200, {"sessions": [s.record["id"] for s in targets]})
