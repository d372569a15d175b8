"""The relay's gevent server: upgrade handling, plain-HTTP routes, and session dispatch.

gevent-websocket's ``WebSocketHandler`` (the design card) does the handshake; this subclass
adds what the relay needs around it:

* every refusal happens *before* the 101 (token, Origin, rate, replay: :mod:`relay.admission`),
  as an HTTP status with a one-line reason in the body and one log line;
* the socket is a :class:`relay.frames.FastWebSocket` (C-speed frame path, size limit);
* the first requested ``Sec-WebSocket-Protocol`` is echoed.

Plain HTTP: ``GET /token/<t>`` and ``/auth/<t>`` answer ``200 OK`` (uptime pings; tokens are
only enforced on upgrades), ``/healthz`` and ``/metrics`` as usual, anything else ``426``.
Sessions are dispatched by the token's origin through :attr:`RelayApp.surfaces`: ``client``
(the website, :mod:`relay.browser`) and ``twilio`` (phone calls, :mod:`relay.twilio_session`).
A Twilio stream that fails admission is accepted and then closed 1008, so Twilio runs the
TwiML after ``</Connect>`` and the caller hears the apology instead of an error tone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import gevent
import orjson
import redis
from gevent.pywsgi import LoggingLogAdapter
from geventwebsocket.handler import WebSocketHandler
from geventwebsocket.server import WebSocketServer
from geventwebsocket.websocket import Stream
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.config import Config
from common.twilio_client import make_client
from relay import admission, metrics, notify
from relay.admission import Admitted, Gate, Refusal
from relay.browser import BrowserSession, Close
from relay.frames import FastWebSocket
from relay.twilio_session import TwilioCall
from relay.upstream import Upstream, connect, realtime_url

log = logging.getLogger(__name__)

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: RFC 7230 token characters: a subprotocol outside them is not echoed.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
#: Data the browser may send before OpenAI answers (about a minute of 24 kHz PCM as base64).
MIN_QUEUE_BYTES = 4 << 20

TWILIO_SURFACE = "twilio"

Session = Callable[[FastWebSocket, Admitted], None]


class RelayApp:
    """The WSGI application: admission for the handler, HTTP routes, and session runners."""

    def __init__(
        self, cfg: Config, gate: Gate, open_upstream: Callable[[], Upstream] | None = None
    ):
        self.cfg = cfg
        self.gate = gate
        self.open_upstream = open_upstream or self._connect_openai
        #: Token origin -> session runner. Only these origins are admitted.
        self.surfaces: dict[str, Session] = {
            admission.BROWSER: self.run_browser,
            admission.TWILIO: self.run_twilio,
        }
        self.sessions: set[BrowserSession] = set()
        self.calls: set[TwilioCall] = set()

    # -- admission (called by the handler before the 101) -----------------------------------
    def client_ip(self, environ: dict[str, Any]) -> str:
        return admission.client_ip(
            environ.get("REMOTE_ADDR"),
            environ.get("HTTP_X_FORWARDED_FOR"),
            self.cfg.trusted_proxy_count,
        )

    def admit(self, environ: dict[str, Any], ip: str) -> Admitted | Refusal:
        return admission.admit(
            self.cfg,
            self.gate,
            path=environ.get("PATH_INFO", ""),
            query_string=environ.get("QUERY_STRING", ""),
            origin=environ.get("HTTP_ORIGIN"),
            ip=ip,
            protocols=environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL"),
            surfaces=tuple(self.surfaces),
            signature=environ.get("HTTP_X_TWILIO_SIGNATURE"),
        )

    # -- sessions ---------------------------------------------------------------------------
    def _connect_openai(self) -> Upstream:
        url = realtime_url(self.cfg.openai_realtime_url, self.cfg.openai_realtime_model)
        return connect(url, self.cfg.openai_api_key)

    def run_browser(self, ws: FastWebSocket, admitted: Admitted) -> None:
        session = BrowserSession(
            ws,
            self.open_upstream,
            time_limit_s=self.cfg.session_time_limit_seconds,
            max_queue_bytes=max(MIN_QUEUE_BYTES, self.cfg.max_frame_bytes),
            client_ip=admitted.client_ip,
        )
        self.sessions.add(session)
        try:
            session.run()
        finally:
            self.sessions.discard(session)

    def run_twilio(self, ws: FastWebSocket, admitted: Admitted) -> None:
        call = TwilioCall(self.cfg, ws, self.open_upstream, end_call=self.complete_call)
        self.calls.add(call)
        metrics.ACTIVE.labels(TWILIO_SURFACE).inc()
        started = time.monotonic()
        try:
            ended = call.run()
        finally:
            self.calls.discard(call)
            metrics.ACTIVE.labels(TWILIO_SURFACE).dec()
        metrics.SESSIONS.labels(TWILIO_SURFACE, ended.reason).inc()
        metrics.DURATION.labels(TWILIO_SURFACE).observe(time.monotonic() - started)
        metrics.FRAMES.labels(TWILIO_SURFACE, "in").inc(call.frames_in)
        metrics.FRAMES.labels(TWILIO_SURFACE, "out").inc(call.frames_out)
        metrics.BARGE_INS.inc(call.bridge.barge_ins)
        if ended.reason in notify.VOICEMAIL_REASONS and self.cfg.voicemail_notify_to:
            bridge = call.bridge
            lines = list(bridge.transcript.lines)
            gevent.spawn(
                notify.queue_voicemail_notice, bridge.call_sid, bridge.params, ended.reason, lines
            )

    def complete_call(self, call_sid: str) -> None:
        """REST fallback for a deliberate hang-up: set the call ``completed``."""
        if not call_sid or not self.cfg.twilio_account_sid:
            return
        make_client(self.cfg).calls(call_sid).update(status="completed")

    def refuse_stream(self, ws: FastWebSocket, refusal: Refusal) -> None:
        """A Twilio stream that failed admission: close it with a code Twilio understands."""
        ws.close(refusal.close_code or 1008, refusal.reason)
        with gevent.Timeout(2, False):
            ws.linger()

    def shutdown_sessions(self) -> None:
        """Tell every live session to end (1001), e.g. on SIGTERM during a deploy. Calls end
        the failure way, so their callers hear the apology TwiML rather than dead air."""
        for session in list(self.sessions):
            session.end(Close(1001, "server_shutdown"))
        for call in list(self.calls):
            call.stop("server_shutdown")

    # -- WSGI -------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        ws = environ.get("wsgi.websocket")
        if ws is not None:
            if (refused := environ.get("relay.refused")) is not None:
                self.refuse_stream(ws, refused)
                return []
            admitted: Admitted = environ["relay.admitted"]
            self.surfaces[admitted.surface](ws, admitted)
            return []
        return self.http(environ, start_response)

    def http(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if method in ("GET", "HEAD"):
            if path.startswith(("/token/", "/auth/")):
                return _reply(start_response, 200, b"OK\n")
            if path == "/healthz":
                return self.healthz(start_response)
            if path == "/metrics":
                return _reply(start_response, 200, generate_latest(), CONTENT_TYPE_LATEST)
        if method == "POST" and environ.get("HTTP_X_TWILIO_SIGNATURE"):
            # The old Worker's behaviour: a stray Twilio webhook gets 200 so Twilio stops retrying.
            log.warning(
                "unexpected Twilio POST to the relay",
                extra={"client_ip": self.client_ip(environ), "reason": "twilio_post"},
            )
            return _reply(start_response, 200, b"ok\n")
        return _reply(
            start_response, 426, b"Expected Upgrade: websocket\n", extra=[("Upgrade", "websocket")]
        )

    def healthz(self, start_response) -> Iterable[bytes]:
        try:
            self.gate.ping()
        except redis.RedisError as exc:
            body = {"status": "degraded", "redis": f"unreachable: {type(exc).__name__}"}
            return _reply(start_response, 503, orjson.dumps(body), "application/json")
        body = {"status": "ok", "redis": "ok", "sessions": len(self.sessions)}
        return _reply(start_response, 200, orjson.dumps(body), "application/json")


def _reply(
    start_response,
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *(extra or [])]
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [body]


class RelayHandler(WebSocketHandler):
    """gevent-websocket's handler with admission before the 101 and our frame path after."""

    application: RelayApp

    def upgrade_websocket(self):
        env = self.environ
        if (
            env.get("REQUEST_METHOD") != "GET"
            or env.get("HTTP_UPGRADE", "").lower() != "websocket"
            or "upgrade" not in env.get("HTTP_CONNECTION", "").lower()
        ):
            return None  # plain HTTP: the WSGI app answers
        app = self.application
        ip = app.client_ip(env)
        if self.request_version != "HTTP/1.1":
            return self.refuse(Refusal(400, "bad_handshake", "WebSocket needs HTTP/1.1"), ip)
        if env.get("HTTP_SEC_WEBSOCKET_VERSION", "") != "13":
            refusal = Refusal(426, "bad_version", "only WebSocket version 13 is supported")
            return self.refuse(refusal, ip, [("Sec-WebSocket-Version", "13")])
        key = env.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
        try:
            key_ok = len(base64.b64decode(key, validate=True)) == 16
        except (binascii.Error, ValueError):
            key_ok = False
        if not key_ok:
            return self.refuse(Refusal(400, "bad_handshake", "bad Sec-WebSocket-Key"), ip)
        decision = app.admit(env, ip)
        if isinstance(decision, Refusal):
            if decision.close_code is not None:
                self.log_refusal(decision, ip)
                return self.accept(key, decision)
            return self.refuse(decision, ip)
        return self.accept(key, decision)

    def accept(self, key: str, admitted: Admitted | Refusal) -> None:
        self.websocket = FastWebSocket(
            self.environ, Stream(self), self, max_bytes=self.application.cfg.max_frame_bytes
        )
        self.environ.update(
            {
                "wsgi.websocket_version": "13",
                "wsgi.websocket": self.websocket,
                ("relay.admitted" if isinstance(admitted, Admitted) else "relay.refused"): admitted,
            }
        )
        protocol = admitted.subprotocol if isinstance(admitted, Admitted) else None
        if protocol is None and isinstance(admitted, Refusal):
            protocol = admission.first_subprotocol(self.environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL"))
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode("latin-1")).digest())
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept.decode("latin-1")),
        ]
        if protocol and _TOKEN.match(protocol):
            headers.append(("Sec-WebSocket-Protocol", protocol))
        self.socket.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )  # TCP_NODELAY: frames are small and latency-bound
        self.start_response("101 Switching Protocols", headers)

    def log_refusal(self, refusal: Refusal, ip: str) -> None:
        how = f"close {refusal.close_code}" if refusal.close_code else str(refusal.status)
        log.warning(
            "upgrade refused (%s): %s",
            how,
            refusal.detail,
            extra={"reason": refusal.reason, "client_ip": ip, "status": refusal.status},
        )
        metrics.REFUSALS.labels(refusal.reason).inc()

    def refuse(
        self, refusal: Refusal, ip: str, extra: list[tuple[str, str]] | None = None
    ) -> list[bytes]:
        self.log_refusal(refusal, ip)
        headers = [("Connection", "close"), *(extra or [])]
        if refusal.retry_after is not None:
            headers.append(("Retry-After", str(refusal.retry_after)))
        self.close_connection = True
        body = f"{refusal.detail} ({refusal.reason})\n".encode()
        return _reply(self.start_response, refusal.status, body, extra=headers)

    def log_request(self) -> None:
        """No access log: sessions and refusals log their own line, pings need none."""


def build_server(cfg: Config, host: str, port: int, gate: Gate | None = None) -> WebSocketServer:
    """The relay server, not yet started (``serve_forever`` / ``start``)."""
    app = RelayApp(cfg, gate or admission.RedisGate(cfg))
    return WebSocketServer(
        (host, port),
        app,
        handler_class=RelayHandler,
        log=None,
        # pywsgi reports client garbage (bad request lines) here: a warning, not an error.
        error_log=LoggingLogAdapter(logging.getLogger("relay.http"), logging.WARNING),
    )
