"""The simulator's I/O: one asyncio ``websockets`` server for the Realtime WebSocket and the
plain-HTTP control endpoints (``/_sandbox/...``, ``/healthz``) on the same port.

The handshake is checked like the real service checks it: ``Authorization: Bearer <key>``
(else HTTP 401 with an OpenAI error body), a known GA model not past its shutdown date
(:mod:`sandbox.realtime_sim.models`), and no ``OpenAI-Beta`` header:
a beta client gets the ``beta_api_shape_disabled`` error event and close 4000, as OpenAI
answers since May 2026.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from sandbox.realtime_sim.models import CLOCK, gone, gone_message, model_ok
from sandbox.realtime_sim.responses import Faults
from sandbox.realtime_sim.session import Session
from sandbox.realtime_sim.tools import Script

log = logging.getLogger("realtime-sim")

BETA_MESSAGE = (
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
)


def _json(status: int, body: Any) -> Response:
    data = orjson.dumps(body)
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return Response(status, http.HTTPStatus(status).phrase, headers, data)


def _openai_error(status: int, message: str, code: str | None) -> Response:
    return _json(
        status,
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        },
    )


class Simulator:
    def __init__(self, api_key: str, speed: float = 1.0, echo: bool = False):
        self.api_key = api_key
        self.speed = speed
        self.echo = echo
        self.sessions: list[Session] = []
        self.conns: dict[Session, ServerConnection] = {}
        self.reject_connects = 0
        self.drop_after_ms: float | None = None
        self.faults = Faults()  # shared by every session: "the next N responses fail"
        self.script = Script()  # shared too: what the caller says, which tools get called

    # -- HTTP --------------------------------------------------------------------------------
    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path.startswith("/_sandbox/") or parts.path == "/healthz":
            return await self.control(request, parts.path)
        if parts.path != "/v1/realtime":
            return _openai_error(404, f"Invalid URL (GET {parts.path})", None)
        if "upgrade" not in request.headers.get("Connection", "").lower():
            return Response(426, "Upgrade Required", Headers([("Upgrade", "websocket")]), b"")
        if self.reject_connects > 0:
            self.reject_connects -= 1
            return _openai_error(503, "The server is overloaded or not ready yet.", None)
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":
            return _openai_error(
                401,
                "Incorrect API key provided." if auth else "Missing bearer auth.",
                "invalid_api_key",
            )
        model = (parse_qs(parts.query).get("model") or [""])[0]
        if "openai-beta" not in {k.lower() for k in request.headers}:
            if not model_ok(model):
                return _openai_error(400, f"Invalid model: '{model}'.", "model_not_found")
            if gone(model, CLOCK.today()):
                return _openai_error(400, gone_message(model), "model_not_found")
        return None

    async def control(self, request: Request, path: str) -> Response:
        # websockets only hands GET requests to process_request: control uses GET with a query.
        query = parse_qs(urlsplit(request.path).query)
        if path == "/healthz":
            return _json(200, {"status": "ok"})
        if path == "/_sandbox/sessions":
            # "items": the session's conversation, client-created items included (a relay's
            # replay after a reconnect is checked against it).
            sessions = [{**s.record, "items": s.items} for s in self.sessions]
            return _json(200, {"sessions": sessions})
        if path == "/_sandbox/reset":
            self.sessions = [s for s in self.sessions if s.record["open"]]
            for s in self.sessions:
                s.record["responses"], s.record["truncations"] = [], []
            self.sessions = []
            self.reject_connects, self.drop_after_ms = 0, None
            self.faults.reset()  # in place: open sessions hold this object
            self.script.reset()
            CLOCK.fixed = None
            return _json(200, {"ok": True})
        if path == "/_sandbox/clock":
            return self.clock(query)
        if path in ("/_sandbox/caller_says", "/_sandbox/call_tool"):
            return self.scripted(path, query)
        if path == "/_sandbox/faults":
            if "reject_connects" in query:
                self.reject_connects = int(query["reject_connects"][0])
            if "drop_after_ms" in query:
                value = query["drop_after_ms"][0]
                self.drop_after_ms = None if value in ("", "null", "none") else float(value)
            if "drop_now" in query:
                for conn in list(self.conns.values()):
                    conn.transport.abort()
            if "fail_responses" in query:
                self.faults.fail_responses = int(query["fail_responses"][0])
            for name in ("fail_type", "fail_code", "fail_message"):
                if name in query:
                    setattr(self.faults, name, query[name][0])
            return _json(
                200,
                {
                    "reject_connects": self.reject_connects,
                    "drop_after_ms": self.drop_after_ms,
                    "fail_responses": self.faults.fail_responses,
                },
            )
        return _json(404, {"error": f"unknown control path {path}"})

    def clock(self, query: dict[str, list[str]]) -> Response:
        """Fix the simulated date (``today=YYYY-MM-DD``) or return to the real one (``today=``)."""
        value = (query.get("today") or [""])[0].strip()
        try:
            CLOCK.fixed = date.fromisoformat(value) if value else None
        except ValueError:
            return _json(400, {"error": f"today must be YYYY-MM-DD, got {value!r}"})
        return _json(200, {"today": CLOCK.today().isoformat(), "fixed": CLOCK.fixed is not None})

    def scripted(self, path: str, query: dict[str, list[str]]) -> Response:
        """Queue what the caller says next, or a tool call the next response makes."""
        if path == "/_sandbox/caller_says":
            text = (query.get("text") or [""])[0].strip()
            if not text:
                return _json(400, {"error": "text is required"})
            self.script.caller_says.append(text)
            return _json(200, self.script.view())
        name = (query.get("name") or [""])[0]
        try:
            arguments = orjson.loads((query.get("arguments") or ["{}"])[0])
        except orjson.JSONDecodeError:
            return _json(400, {"error": "arguments must be a JSON object"})
        if not name or not isinstance(arguments, dict):
            return _json(400, {"error": "name and a JSON object of arguments are required"})
        self.script.tool_calls.append((name, arguments))
        return _json(200, self.script.view())

    # -- WebSocket ---------------------------------------------------------------------------
    async def handle(self, conn: ServerConnection) -> None:
        request = conn.request
        assert request is not None
        if "openai-beta" in {k.lower() for k in request.headers}:
            error = {
                "type": "error",
                "event_id": "event_beta",
                "error": {
                    "type": "invalid_request_error",
                    "code": "beta_api_shape_disabled",
                    "message": BETA_MESSAGE,
                    "param": None,
                },
            }
            await conn.send(orjson.dumps(error).decode())
            await conn.close(4000, "beta_api_shape_disabled")
            return
        model = (parse_qs(urlsplit(request.path).query).get("model") or [""])[0]

        async def send(event: dict[str, Any]) -> None:
            await conn.send(orjson.dumps(event).decode())

        session = Session(model, send, self.speed, self.echo, self.faults, self.script)
        self.sessions.append(session)
        self.conns[session] = conn
        dropper = None
        if self.drop_after_ms is not None:
            dropper = asyncio.get_running_loop().call_later(
                self.drop_after_ms / 1000, conn.transport.abort
            )
        try:
            await session.emit({"type": "session.created", "session": session.config})
            async for message in conn:
                if isinstance(message, bytes):
                    await session.error(
                        "invalid_event", "Binary frames are not supported.", None, None
                    )
                    continue
                await session.on_text(message)
        except ConnectionClosed:
            pass
        finally:
            if dropper is not None:
                dropper.cancel()
            session.close(conn.close_code)
            self.conns.pop(session, None)


async def run(host: str, port: int, api_key: str, speed: float, echo: bool) -> None:
    sim = Simulator(api_key, speed, echo)
    stop = asyncio.get_running_loop().create_future()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        sim.handle,
        host,
        port,
        process_request=sim.process_request,
        max_size=16 * 1024 * 1024,
        compression=None,
        ping_interval=None,
    ):
        print(f"realtime-sim listening on ws://{host}:{port}/v1/realtime", flush=True)
        await stop
    with contextlib.suppress(Exception):
        print("realtime-sim stopped", flush=True)
