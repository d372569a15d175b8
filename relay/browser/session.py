"""The website's voice assistant: a relay between a browser and OpenAI Realtime.

The browser speaks the Realtime protocol itself; the relay holds the API key, admits only
GateFrames pages (see :mod:`relay.admission`), caps the session, and owns what the assistant
is told: with ``BROWSER_SESSION_POLICY=owned`` (the default) the relay's own ``session.update``
goes first and every browser event is policed by :mod:`relay.browser.policy` (fields a page
may not set are stripped and named in an ``error`` event). Audio appends, the bulk of the
traffic, pass byte for byte after the one ``orjson.loads`` every frame gets; OpenAI's events
pass to the browser byte for byte. ``passthrough`` (unsafe) relays the browser's events
verbatim, as the relay used to. Bad JSON is answered with an ``error`` event and never
reaches OpenAI; a browser that sends nothing for ``BROWSER_IDLE_SECONDS`` is closed (1000).

:class:`BrowserCore` makes the decisions without any I/O (unit-tested alone);
:class:`BrowserSession` is the gevent shell: a browser reader, an upstream reader, and the
handler greenlet that waits for the end (or the time cap) and releases everything.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import gevent
import gevent.event
import orjson

from common.end_reasons import EndReason
from relay.browser.policy import Verdict, error_event, police
from relay.session_summary import SessionSummary
from relay.wire.codec import CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_TRY_AGAIN, OP_TEXT, CloseCode
from relay.wire.server_socket import FastWebSocket
from relay.wire.upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)

TIME_LIMIT_CODE = 4000
TIME_LIMIT_MESSAGE = "Session time limit reached. Start a new conversation to keep chatting."
#: How long teardown may spend telling a slow peer goodbye.
GOODBYE_SECONDS = 2.0
#: Policy refusals logged per session; a page sending thousands is logged once per event up
#: to here, then only counted (the session's end line has the total).
LOGGED_REFUSALS = 5


@dataclass(frozen=True, slots=True)
class ToUpstream:
    data: bytes


@dataclass(frozen=True, slots=True)
class ToBrowser:
    data: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """A policed event: ``down`` (error events) to the browser, then ``up`` (what is left of
    the event, None if nothing or if it was queued) upstream; ``params`` were removed, and
    ``refused`` says nothing of the event goes upstream."""

    up: bytes | None
    down: tuple[bytes, ...]
    params: tuple[str, ...]
    refused: bool


@dataclass(frozen=True, slots=True)
class Close:
    """End the session: close the browser with ``code`` / ``reason`` (and the upstream).
    ``reason`` is an :class:`EndReason`, or the wire's word when the peer caused the end (a
    codec frame error, ``upstream_closed_<code>``)."""

    code: int
    reason: EndReason | str
    notice: bytes = b""  # a last text message for the browser before the close


class BrowserCore:
    """Decisions for one browser session: validate, police, queue until the upstream is open,
    and the two clocks (time cap, idle)."""

    def __init__(
        self,
        max_queue_bytes: int,
        *,
        opening: bytes | None = None,
        time_limit_s: float = 600.0,
        idle_s: float = 60.0,
    ):
        self.max_queue_bytes = max_queue_bytes
        #: The relay's own session.update (owned policy): sent first, browser events policed.
        self.opening = opening
        self.policed = opening is not None
        self.time_limit_s = time_limit_s
        self.idle_s = idle_s
        self.open = False
        self.queue: list[bytes] = []
        self.queued_bytes = 0
        self.refusals = 0  # policed events that lost a field or were refused
        self.ended: Close | None = None

    def end(self, close: Close) -> Close:
        """End the session; the first end stands and is returned (a later one changes
        nothing, so a reader finishing late cannot relabel a time-cap close). The only way
        anything sets :attr:`ended`."""
        if self.ended is None:
            self.ended = close
        return self.ended

    def browser_message(
        self, opcode: int, payload: bytes
    ) -> ToUpstream | ToBrowser | Reply | Close | None:
        """What to do with one message from the browser (None: queued for later)."""
        if opcode != OP_TEXT:
            return ToBrowser(error_event("unsupported_frame", "Send events as JSON text frames."))
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return ToBrowser(error_event("invalid_json", "The event was not valid JSON."))
        if not isinstance(event, dict):
            return ToBrowser(error_event("invalid_event", "An event must be a JSON object."))
        if not self.policed:
            return self._send(payload)
        out = police(event, payload)
        if type(out) is not Verdict:
            return self._send(out)  # type: ignore[arg-type]  # bytes
        self.refusals += 1
        verdict: Verdict = out  # type: ignore[assignment]
        up = None
        if verdict.forward is not None:
            sent = self._send(verdict.forward)
            if type(sent) is Close:
                return sent
            up = sent.data if type(sent) is ToUpstream else None  # type: ignore[union-attr]
        return Reply(up, verdict.errors, verdict.params, verdict.forward is None)

    def _send(self, data: bytes) -> ToUpstream | Close | None:
        if self.open:
            return ToUpstream(data)
        self.queued_bytes += len(data)
        if self.queued_bytes > self.max_queue_bytes:
            return Close(CLOSE_TRY_AGAIN, "too much data before the assistant was ready")
        self.queue.append(data)
        return None

    def upstream_open(self) -> list[bytes]:
        """The upstream is connected: hand back what goes first (the relay's session, then
        the queue, in order); later frames go direct."""
        queued, self.queue, self.queued_bytes = self.queue, [], 0
        if self.opening is not None and not self.open:
            queued.insert(0, self.opening)
        self.open = True
        return queued

    def timers(self, now: float, started: float, last_heard: float) -> Close | float:
        """The time cap or idle close if one is due, else the seconds until the next is."""
        if now - started >= self.time_limit_s:
            return self.time_limit()
        if now - last_heard >= self.idle_s:
            return self.idle()
        return min(started + self.time_limit_s, last_heard + self.idle_s) - now

    @staticmethod
    def upstream_failed() -> Close:
        return Close(CLOSE_INTERNAL, EndReason.UPSTREAM_UNAVAILABLE)

    @staticmethod
    def upstream_closed(code: int | None) -> Close:
        if code is None:
            return Close(CLOSE_INTERNAL, EndReason.UPSTREAM_LOST)
        if code in (1000, 1001):
            return Close(CLOSE_NORMAL, EndReason.UPSTREAM_CLOSED)
        return Close(CLOSE_INTERNAL, f"{EndReason.UPSTREAM_CLOSED}_{code}")

    @staticmethod
    def time_limit() -> Close:
        notice = orjson.dumps({"type": "system.time_limit", "message": TIME_LIMIT_MESSAGE})
        return Close(TIME_LIMIT_CODE, EndReason.TIME_LIMIT, notice)

    @staticmethod
    def idle() -> Close:
        return Close(CLOSE_NORMAL, EndReason.IDLE_TIMEOUT)

    @staticmethod
    def browser_closed() -> Close:
        return Close(CLOSE_NORMAL, EndReason.BROWSER_CLOSED)

    @staticmethod
    def service_restart() -> Close:
        """SIGTERM: 1012 tells the page to reconnect (with a new token, to another relay)."""
        return Close(CloseCode.SERVICE_RESTART, EndReason.SERVICE_RESTART)

    @staticmethod
    def relay_error() -> Close:
        """The session ended without an end (a bug): never left unlabelled."""
        return Close(CLOSE_INTERNAL, EndReason.RELAY_ERROR)


class BrowserSession:
    """Runs one browser session to its end: ``run()`` returns its :class:`SessionSummary`."""

    def __init__(
        self,
        ws: FastWebSocket,
        open_upstream: Callable[[], Upstream],
        *,
        time_limit_s: float,
        idle_s: float,
        max_queue_bytes: int,
        client_ip: str,
        opening: bytes | None = None,
    ):
        self.ws = ws
        self.open_upstream = open_upstream
        self.client_ip = client_ip
        self.core = BrowserCore(
            max_queue_bytes, opening=opening, time_limit_s=time_limit_s, idle_s=idle_s
        )
        self.session_id = uuid.uuid4().hex[:16]
        self.last_heard = time.monotonic()  # the browser's last message (idle close)
        self.up: Upstream | None = None
        self._done = gevent.event.Event()
        self.frames_in = 0  # browser -> upstream
        self.frames_out = 0  # upstream -> browser
        self.summary: SessionSummary | None = None  # set as run() ends, even when killed

    def end(self, close: Close) -> None:
        """Ask the session to finish (first caller wins); the handler greenlet does the work."""
        self.core.end(close)
        self._done.set()

    # -- the two readers --------------------------------------------------------------------
    def _browser_loop(self) -> None:
        ws, core = self.ws, self.core
        while True:
            got = ws.receive_raw()
            if got is None:
                break
            self.last_heard = time.monotonic()
            out = core.browser_message(got[0], got[1])
            if out is None:
                continue
            if type(out) is ToUpstream:
                self._up(out.data)
            elif type(out) is ToBrowser:
                try:
                    ws.send_frame(out.data, OP_TEXT)
                except OSError:
                    break
            elif type(out) is Reply:
                self._log_refusal(out)  # type: ignore[arg-type]
                try:
                    for error in out.down:  # type: ignore[union-attr]
                        ws.send_frame(error, OP_TEXT)
                except OSError:
                    break
                if out.up is not None:  # type: ignore[union-attr]
                    self._up(out.up)  # type: ignore[union-attr]
            else:
                self.end(out)  # type: ignore[arg-type]
                return
        if ws.close_code not in (None, CLOSE_NORMAL) and ws.peer_close_code is None:
            # We closed it for a protocol breach (1002 / 1007 / 1009): that is the end reason.
            self.end(Close(ws.close_code, ws.close_reason))
        else:
            self.end(self.core.browser_closed())

    def _up(self, data: bytes) -> None:
        try:
            self.up.send(data)  # type: ignore[union-attr]  # open implies set
            self.frames_in += 1
        except OSError:
            pass  # the upstream reader notices the dead socket and ends the session

    def _log_refusal(self, reply: Reply) -> None:
        if self.core.refusals > LOGGED_REFUSALS:
            return
        log.warning(
            "browser event %s: %s",
            "refused" if reply.refused else "stripped",
            ", ".join(reply.params),
            extra={
                "session_id": self.session_id,
                "client_ip": self.client_ip,
                "reason": "browser_policy",
            },
        )

    def _upstream_loop(self) -> None:
        try:
            up = self.open_upstream()
        except UpstreamError as exc:
            log.warning(
                "OpenAI Realtime connect failed: %s",
                exc.reason,
                extra={"session_id": self.session_id, "reason": "upstream_unavailable"},
            )
            self.end(self.core.upstream_failed())
            return
        self.up = up
        queued = self.core.upstream_open()  # no yield between this and the send below
        try:
            if queued:
                up.send_many(queued)
                self.frames_in += len(queued)
        except OSError:
            self.end(self.core.upstream_closed(None))
            return
        recv, send, count = up.receive_raw, self.ws.send_frame, 0
        try:
            while (got := recv()) is not None:
                send(got[1], got[0])
                count += 1
        except OSError:
            self.end(self.core.browser_closed())
        finally:
            self.frames_out += count
        self.end(self.core.upstream_closed(up.close_code))

    # -- lifecycle --------------------------------------------------------------------------
    def run(self) -> SessionSummary:
        started = time.monotonic()
        ctx = {"session_id": self.session_id, "client_ip": self.client_ip}
        log.info("browser session started", extra=ctx)
        readers = [gevent.spawn(self._upstream_loop), gevent.spawn(self._browser_loop)]
        try:
            while True:
                due = self.core.timers(time.monotonic(), started, self.last_heard)
                if type(due) is Close:
                    self.end(due)
                    break
                if self._done.wait(due):
                    break
        finally:
            close = self.core.end(self.core.relay_error())  # unless it ended (it should have)
            self._release(readers, close)
            self.summary = summary = self._summary(close, time.monotonic() - started)
        return summary

    def _summary(self, close: Close, seconds: float) -> SessionSummary:
        return SessionSummary(
            kind="browser",
            session_id=self.session_id,
            reason=close.reason,
            deliberate=False,
            close_code=close.code,
            duration_s=seconds,
            elapsed_s=seconds,
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            policed=self.core.refusals,
            client_ip=self.client_ip,
        )

    def _release(self, readers: list[gevent.Greenlet], close: Close) -> None:
        """Say goodbye to the browser, stop both readers, close the upstream. Never raises."""
        with gevent.Timeout(GOODBYE_SECONDS, False):
            try:
                if close.notice and not self.ws.closed:
                    self.ws.send_frame(close.notice, OP_TEXT)
            except OSError:
                pass
            self.ws.close(close.code, close.reason)
        gevent.killall(readers, block=True, timeout=GOODBYE_SECONDS)
        with gevent.Timeout(GOODBYE_SECONDS, False):
            self.ws.linger()  # let the browser read our close frame before TCP goes away
        if self.up is not None:
            with gevent.Timeout(GOODBYE_SECONDS, False):
                self.up.close(CLOSE_NORMAL)
