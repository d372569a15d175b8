"""The simulator's I/O: one asyncio ``websockets`` server for the Live WebSocket
(``/v1/live/sessions``) and the control endpoints (:mod:`sandbox.live_sim.control`) on one port.

The handshake is checked as the service documents it, in this order:

- a path other than ``/v1/live/sessions`` → HTTP 404; a plain GET (no upgrade) → 426;
- ``/_sandbox/faults?reject_connects=N`` pending → 503 (an overloaded service);
- ``Authorization`` not exactly ``Bearer <key>`` → 401 ``invalid_api_key``;
- an ``OpenAI-Beta`` header → 400 (``beta_header_not_supported``): Live has no beta shape;
- any query string (``?model=…`` included) → 400 ``unknown_parameter``: the model goes in
  ``session.start``.

Refusals carry an OpenAI error body ``{"error": {message, type, param, code}}``. After the
upgrade the server sends nothing until the client's ``session.start``
(:mod:`sandbox.live_sim.session`). A binary frame is answered with an ``error`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from sandbox.live_sim.control import control, openai_error
from sandbox.live_sim.script import Script
from sandbox.live_sim.session import Session, Settings

PATH = "/v1/live/sessions"


class Simulator:
    def __init__(self, api_key: str, speed: float = 1.0, echo: bool = False):
        self.api_key = api_key
        self.speed = speed
        self.settings = Settings(speed, echo)
        self.script = Script()  # shared by every session: what callers say, which tools run
        self.sessions: list[Session] = []
        self.conns: dict[Session, ServerConnection] = {}
        self.reject_connects = 0
        self.drop_after_ms: float | None = None

    def reset(self) -> None:
        self.sessions = [s for s in self.sessions if s.record["open"]]
        self.script.reset()
        self.reject_connects, self.drop_after_ms = 0, None
        self.settings.reset()  # in place: open sessions hold it

    # -- HTTP ------------------------------------------------------------------------------------
    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path.startswith("/_sandbox/") or parts.path == "/healthz":
            return await control(self, request)
        if parts.path != PATH:
            return openai_error(404, f"Invalid URL (GET {parts.path})", None)
        if "upgrade" not in request.headers.get("Connection", "").lower():
            return openai_error(426, "Upgrade to a WebSocket to use the Live API.", None)
        if self.reject_connects > 0:
            self.reject_connects -= 1
            return openai_error(503, "The server is overloaded or not ready yet.", None)
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":
            message = "Incorrect API key provided." if auth else "Missing bearer auth."
            return openai_error(401, message, "invalid_api_key")
        if "openai-beta" in {k.lower() for k in request.headers}:
            return openai_error(
                400,
                "The Live API does not accept an OpenAI-Beta header: remove it.",
                "beta_header_not_supported",
            )
        if "?" in request.path:
            names = list(parse_qs(parts.query, keep_blank_values=True)) or ["?"]
            return openai_error(
                400,
                f"Unknown query parameter: '{names[0]}'. The Live WebSocket URL takes no query "
                "string: send the model and every setting in session.start.",
                "unknown_parameter",
                names[0],
            )
        return None

    # -- WebSocket -------------------------------------------------------------------------------
    async def handle(self, conn: ServerConnection) -> None:
        async def send(event: dict[str, Any]) -> None:
            # A closed socket takes nothing; the read loop below ends the session.
            with contextlib.suppress(ConnectionClosed):
                await conn.send(orjson.dumps(event).decode())

        def close_socket() -> None:
            # A task, so a control request ending a session never waits for the client's
            # side of the closing handshake.
            asyncio.get_running_loop().create_task(conn.close(1000, "session closed"))

        session = Session(send, close_socket, self.settings, self.script)
        self.sessions.append(session)
        self.conns[session] = conn
        dropper = None
        if self.drop_after_ms is not None:
            dropper = asyncio.get_running_loop().call_later(
                self.drop_after_ms / 1000, conn.transport.abort
            )
        try:
            async for message in conn:
                if isinstance(message, bytes):
                    await session.error(
                        "invalid_event", "Binary frames are not supported: send JSON text.", None
                    )
                    continue
                await session.on_text(message)
        except ConnectionClosed:
            pass
        finally:
            if dropper is not None:
                dropper.cancel()
            session.finish(conn.close_code)
            self.conns.pop(session, None)


async def run(host: str, port: int, api_key: str, speed: float, echo: bool = False) -> None:
    sim = Simulator(api_key, speed, echo)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with serve(
        sim.handle,
        host,
        port,
        process_request=sim.process_request,
        max_size=16 * 1024 * 1024,
        compression=None,
        ping_interval=None,
    ):
        print(f"live-sim listening on ws://{host}:{port}{PATH}", flush=True)
        await stop
    with contextlib.suppress(Exception):
        print("live-sim stopped", flush=True)
