"""The relay's gevent server: upgrade handling, plain-HTTP routes, and session dispatch.

gevent's pywsgi reads the request; :mod:`relay.handler` (a gevent-websocket
``WebSocketHandler`` subclass) does the handshake itself with :func:`relay.wire.codec.accept_key`
and adds what the relay needs around it:

* every refusal happens *before* the 101 (token, Origin, rate, session caps, replay:
  :mod:`relay.admission`, :mod:`relay.capacity`), as an HTTP status with a one-line reason in
  the body, one log line and a ``relay_upgrades_refused_total{reason}`` count;
* the socket is a :class:`relay.wire.server_socket.FastWebSocket` (C-speed frame path, size limit);
* the first requested ``Sec-WebSocket-Protocol`` is echoed.

Plain HTTP: ``GET /token/<t>`` and ``/auth/<t>`` answer ``200 OK`` (uptime pings; tokens are
only enforced on upgrades), ``/healthz``, ``/metrics`` (behind ``METRICS_TOKEN`` when set),
anything else ``426``. A request whose line and headers take longer than
``RELAY_HEADER_TIMEOUT_SECONDS`` is answered 408 and closed (slowloris: each such socket
would otherwise hold a greenlet and a file descriptor for as long as the client likes).
Sessions are dispatched by the token's origin through :attr:`RelayApp.surfaces`: ``client``
(the website, :mod:`relay.browser.session`) and ``twilio`` (phone calls, :mod:`relay.call.session`).
A Twilio stream that fails admission is accepted and then closed 1008, so Twilio runs the
TwiML after ``</Connect>`` and the caller hears the apology instead of an error tone.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import orjson
import redis
from gevent.pywsgi import LoggingLogAdapter
from geventwebsocket.server import WebSocketServer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.config import Config
from common.models import transcription_of
from common.prompts import website_prompt
from common.twilio_client import make_client
from relay import admission, metrics
from relay.admission import Admitted, Gate, Refusal
from relay.browser.policy import owned_session_update
from relay.browser.session import BrowserCore, BrowserSession
from relay.call.after_call import after_call
from relay.call.engines import connect_call_upstream
from relay.call.session import TwilioCall
from relay.capacity import Capacity
from relay.handler import RelayHandler
from relay.handler import reply as _reply
from relay.session_summary import SURFACES, Kind, record
from relay.wire.server_socket import FastWebSocket
from relay.wire.upstream import Upstream, connect, realtime_url

log = logging.getLogger(__name__)

#: Data the browser may send before OpenAI answers (about a minute of 24 kHz PCM as base64).
MIN_QUEUE_BYTES = 4 << 20

Session = Callable[[FastWebSocket, Admitted], None]


class RelayApp:
    """The WSGI application: admission for the handler, HTTP routes, and session runners."""

    def __init__(
        self, cfg: Config, gate: Gate, open_upstream: Callable[[], Upstream] | None = None
    ):
        self.cfg = cfg
        self.gate = gate
        self.open_upstream = open_upstream or self._connect_openai
        #: Phone calls: the configured engine's upstream (browser sessions: always Realtime).
        self.open_call_upstream = open_upstream or (lambda: connect_call_upstream(self.cfg))
        #: Token origin -> session runner. Only these origins are admitted.
        self.surfaces: dict[str, Session] = {
            admission.BROWSER: self.run_browser,
            admission.TWILIO: self.run_twilio,
        }
        self.sessions: set[BrowserSession] = set()
        self.calls: set[TwilioCall] = set()
        self.capacity = Capacity(cfg.browser_sessions_per_ip, cfg.relay_max_sessions)
        self._warned_proxy = False
        #: Set on SIGTERM: new sessions are refused and /healthz answers 503.
        self.draining = False

    # -- admission (called by the handler before the 101) -----------------------------------
    def client_ip(self, environ: dict[str, Any]) -> str:
        return admission.client_ip(
            environ.get("REMOTE_ADDR"),
            environ.get("HTTP_X_FORWARDED_FOR"),
            self.cfg.trusted_proxy_count,
        )

    def note_request(self, environ: dict[str, Any]) -> None:
        """Once per process: a router adds X-Forwarded-For, but none of it is trusted, so every
        client looks like the router (one shared per-IP limit for everyone)."""
        if (
            not self._warned_proxy
            and self.cfg.trusted_proxy_count == 0
            and environ.get("HTTP_X_FORWARDED_FOR")
        ):
            self._warned_proxy = True
            log.warning(
                "X-Forwarded-For is present but TRUSTED_PROXY_COUNT=0: every client is taken "
                "to be %s; set TRUSTED_PROXY_COUNT to the number of proxies in front "
                "(1 behind a PaaS router)",
                environ.get("REMOTE_ADDR"),
                extra={"reason": "untrusted_forwarded_for"},
            )

    def admit(self, environ: dict[str, Any], ip: str) -> Admitted | Refusal:
        if self.draining:
            refusal = Refusal(503, "draining", "this relay is restarting; retry", 2)
            # No Origin: Twilio's stream, refused the Twilio way (1013 "try again later").
            if environ.get("HTTP_ORIGIN") is None:
                return admission.for_twilio(refusal, admission.CLOSE_TRY_AGAIN)
            return refusal
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
            slots=self.capacity,
        )

    # -- sessions ---------------------------------------------------------------------------
    def _connect_openai(self) -> Upstream:
        url = realtime_url(self.cfg.openai_realtime_url, self.cfg.openai_realtime_model)
        return connect(url, self.cfg.openai_api_key)

    def run_browser(self, ws: FastWebSocket, admitted: Admitted) -> None:
        cfg = self.cfg
        opening = None
        if cfg.browser_session_policy == "owned":
            opening = owned_session_update(
                website_prompt(), cfg.realtime_voice, transcription_of(cfg)
            )
        session = BrowserSession(
            ws,
            self.open_upstream,
            time_limit_s=cfg.session_time_limit_seconds,
            idle_s=cfg.browser_idle_seconds,
            max_queue_bytes=max(MIN_QUEUE_BYTES, cfg.max_frame_bytes),
            client_ip=admitted.client_ip,
            opening=opening,
        )
        self._run(session, self.sessions, "browser")

    def run_twilio(self, ws: FastWebSocket, admitted: Admitted) -> None:
        call = TwilioCall(
            self.cfg,
            ws,
            self.open_call_upstream,
            end_call=self.complete_call,
            call_sid=admitted.claims.call_sid or "",
        )
        started_wall = time.time()
        self._run(call, self.calls, "phone")
        ended = call.bridge.ended
        if ended is not None:  # always, once run() returned
            # The summary (or voicemail notice) may wait for a transfer's result: not here.
            gevent.spawn(after_call, self.cfg, call, ended, started_wall)

    def _run(self, session: BrowserSession | TwilioCall, live: set, kind: Kind) -> None:
        """Run a session among the live ones, then record its summary: the one place a
        session's metrics and end line are written, whichever way ``run()`` ended."""
        surface = SURFACES[kind]
        live.add(session)
        metrics.ACTIVE.labels(surface).inc()
        try:
            session.run()
        finally:
            live.discard(session)
            metrics.ACTIVE.labels(surface).dec()
            if session.summary is not None:
                record(session.summary)

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
        """SIGTERM during a deploy: browser sessions are closed 1012 (service restart: the
        page reconnects with a new token), and each call is handed to another relay
        (:mod:`relay.call.handover`); a call that cannot move ends the failure way, so its
        caller hears the apology TwiML rather than dead air."""
        self.draining = True
        for session in list(self.sessions):
            session.end(BrowserCore.service_restart())
        for call in list(self.calls):
            gevent.spawn(call.hand_over)  # a Redis write and a Twilio request each

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
                return self.metrics(environ, start_response)
        if method == "POST" and environ.get("HTTP_X_TWILIO_SIGNATURE"):
            # A stray Twilio webhook (a console URL pointed here) gets 200 so Twilio stops retrying.
            log.warning(
                "unexpected Twilio POST to the relay",
                extra={"client_ip": self.client_ip(environ), "reason": "twilio_post"},
            )
            return _reply(start_response, 200, b"ok\n")
        return _reply(
            start_response, 426, b"Expected Upgrade: websocket\n", extra=[("Upgrade", "websocket")]
        )

    def metrics(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        token = self.cfg.metrics_token
        if token:
            given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, b"Bearer " + token.encode()):
                log.warning(
                    "/metrics refused: %s",
                    "wrong bearer token" if given else "no Authorization header",
                    extra={"client_ip": self.client_ip(environ), "reason": "metrics_auth"},
                )
                body = b"/metrics needs Authorization: Bearer <METRICS_TOKEN>\n"
                return _reply(start_response, 401, body, extra=[("WWW-Authenticate", "Bearer")])
        return _reply(start_response, 200, generate_latest(), CONTENT_TYPE_LATEST)

    def healthz(self, start_response) -> Iterable[bytes]:
        # Slots in use (browser sessions and calls): what the caps count.
        live = {
            "calls": len(self.calls),
            "browser_sessions": len(self.sessions),
            "sessions": self.capacity.live,
        }
        if self.draining:  # a router stops sending new sessions here
            body = {"status": "draining", **live}
            return _reply(start_response, 503, orjson.dumps(body), "application/json")
        try:
            self.gate.ping()
        except redis.RedisError as exc:
            body = {"status": "degraded", "redis": f"unreachable: {type(exc).__name__}", **live}
            return _reply(start_response, 503, orjson.dumps(body), "application/json")
        body = {"status": "ok", "redis": "ok", **live}
        return _reply(start_response, 200, orjson.dumps(body), "application/json")


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
