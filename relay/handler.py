"""The relay's pywsgi/gevent-websocket handler: the header deadline, the upgrade checks
before the 101, and the session slot's release once the connection is done.

:class:`relay.server.RelayApp` makes the decisions (admission, routes); this class only reads
the request, answers refusals as HTTP and switches protocols.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import socket
from http import HTTPStatus
from typing import TYPE_CHECKING

import gevent
from geventwebsocket.handler import WebSocketHandler
from geventwebsocket.websocket import Stream

from relay import admission, metrics
from relay.admission import Admitted, Refusal
from relay.wire.codec import accept_key
from relay.wire.server_socket import FastWebSocket

if TYPE_CHECKING:
    from relay.server import RelayApp

log = logging.getLogger("relay.server")

#: RFC 7230 token characters: a subprotocol outside them is not echoed.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def reply(
    start_response,
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *(extra or [])]
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [body]


class _HeadersLate(BaseException):
    """Raised in a handler's greenlet when its request headers are late. A BaseException, so
    pywsgi's request-parsing ``except Exception`` does not turn it into a 400."""


_TIMEOUT_BODY = b"request headers not complete in time (header_timeout)\n"
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    + f"Content-Length: {len(_TIMEOUT_BODY)}\r\n\r\n".encode()
    + _TIMEOUT_BODY
)


class RelayHandler(WebSocketHandler):
    """gevent-websocket's handler with a deadline on the request headers, admission before
    the 101 and our frame path after."""

    application: RelayApp
    _headers_timer: gevent.Timeout | None = None

    # -- the header deadline: from the first read of the request line to the last header ----
    def read_requestline(self) -> str:
        seconds = self.server.application.cfg.relay_header_timeout_seconds
        self._headers_timer = gevent.Timeout.start_new(seconds, _HeadersLate)
        return super().read_requestline()

    def read_request(self, raw_requestline: str):
        try:
            return super().read_request(raw_requestline)
        finally:
            self._stop_headers_timer()

    def _stop_headers_timer(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.close()
            self._headers_timer = None

    def handle_one_request(self):
        try:
            return super().handle_one_request()
        except _HeadersLate:
            seconds = self.server.application.cfg.relay_header_timeout_seconds
            peer = self.client_address[0] if isinstance(self.client_address, tuple) else ""
            log.warning(
                "request headers not complete after %.1f s: closed",
                seconds,
                extra={"client_ip": peer, "reason": "header_timeout"},
            )
            metrics.HEADER_TIMEOUTS.inc()
            return ("408", _TIMEOUT_RESPONSE)  # pywsgi sends it and closes the connection
        finally:
            self._stop_headers_timer()

    def run_application(self) -> None:
        self.application.note_request(self.environ)
        try:
            super().run_application()
        finally:
            # The session's slot, whichever way it ended (even a 101 the client never read).
            admitted = self.environ.get("relay.admitted")
            if admitted is not None and admitted.lease is not None:
                admitted.lease.release()

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
        accept = accept_key(key)
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept),
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
        return reply(self.start_response, refusal.status, body, extra=headers)

    def log_request(self) -> None:
        """No access log: sessions and refusals log their own line, pings need none."""
