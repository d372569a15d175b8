"""The website's voice assistant: a verbatim relay between a browser and OpenAI Realtime.

The browser speaks the Realtime protocol itself; the relay's job is to hold the API key, admit
only GateFrames pages (see :mod:`relay.admission`), cap the session, and otherwise stay out of
the way. So text frames pass through byte for byte in both directions; the only per-frame work
is one ``orjson.loads`` validity check on what the browser sends (bad JSON is answered with an
``error`` event and never reaches OpenAI).

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

from relay import metrics
from relay.frames import CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_TRY_AGAIN, OP_TEXT, FastWebSocket
from relay.upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)

SURFACE = "browser"
TIME_LIMIT_CODE = 4000
TIME_LIMIT_MESSAGE = "Session time limit reached. Start a new conversation to keep chatting."
#: How long teardown may spend telling a slow peer goodbye.
GOODBYE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ToUpstream:
    data: bytes


@dataclass(frozen=True, slots=True)
class ToBrowser:
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """End the session: close the browser with ``code`` / ``reason`` (and the upstream)."""

    code: int
    reason: str
    notice: bytes = b""  # a last text message for the browser before the close


def error_event(code: str, message: str) -> bytes:
    """An ``error`` event in the Realtime GA shape, so browser code handles it like OpenAI's."""
    return orjson.dumps(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": None,
                "event_id": None,
            },
        }
    )


class BrowserCore:
    """Decisions for one browser session: validate, queue until the upstream is open, cap."""

    def __init__(self, max_queue_bytes: int):
        self.max_queue_bytes = max_queue_bytes
        self.open = False
        self.queue: list[bytes] = []
        self.queued_bytes = 0

    def browser_message(self, opcode: int, payload: bytes) -> ToUpstream | ToBrowser | Close | None:
        """What to do with one message from the browser (None: queued for later)."""
        if opcode != OP_TEXT:
            return ToBrowser(error_event("unsupported_frame", "Send events as JSON text frames."))
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return ToBrowser(error_event("invalid_json", "The event was not valid JSON."))
        if not isinstance(event, dict):
            return ToBrowser(error_event("invalid_event", "An event must be a JSON object."))
        if self.open:
            return ToUpstream(payload)
        self.queued_bytes += len(payload)
        if self.queued_bytes > self.max_queue_bytes:
            return Close(CLOSE_TRY_AGAIN, "too much data before the assistant was ready")
        self.queue.append(payload)
        return None

    def upstream_open(self) -> list[bytes]:
        """The upstream is connected: hand back the queue, in order; later frames go direct."""
        queued, self.queue, self.queued_bytes = self.queue, [], 0
        self.open = True
        return queued

    @staticmethod
    def upstream_failed() -> Close:
        return Close(CLOSE_INTERNAL, "upstream_unavailable")

    @staticmethod
    def upstream_closed(code: int | None) -> Close:
        if code is None:
            return Close(CLOSE_INTERNAL, "upstream_lost")
        if code in (1000, 1001):
            return Close(CLOSE_NORMAL, "upstream_closed")
        return Close(CLOSE_INTERNAL, f"upstream_closed_{code}")

    @staticmethod
    def time_limit() -> Close:
        notice = orjson.dumps({"type": "system.time_limit", "message": TIME_LIMIT_MESSAGE})
        return Close(TIME_LIMIT_CODE, "time_limit", notice)


class BrowserSession:
    """Runs one browser session to its end: ``run()`` returns the end reason."""

    def __init__(
        self,
        ws: FastWebSocket,
        open_upstream: Callable[[], Upstream],
        *,
        time_limit_s: float,
        max_queue_bytes: int,
        client_ip: str,
    ):
        self.ws = ws
        self.open_upstream = open_upstream
        self.time_limit_s = time_limit_s
        self.client_ip = client_ip
        self.core = BrowserCore(max_queue_bytes)
        self.session_id = uuid.uuid4().hex[:16]
        self.up: Upstream | None = None
        self.ending: Close | None = None
        self._done = gevent.event.Event()
        self.frames_in = 0  # browser -> upstream
        self.frames_out = 0  # upstream -> browser

    def end(self, close: Close) -> None:
        """Ask the session to finish (first caller wins); the handler greenlet does the work."""
        if self.ending is None:
            self.ending = close
            self._done.set()

    # -- the two readers --------------------------------------------------------------------
    def _browser_loop(self) -> None:
        ws, core = self.ws, self.core
        while True:
            got = ws.receive_raw()
            if got is None:
                break
            out = core.browser_message(got[0], got[1])
            if out is None:
                continue
            if type(out) is ToUpstream:
                try:
                    self.up.send(out.data)  # type: ignore[union-attr]  # open implies set
                    self.frames_in += 1
                except OSError:
                    pass  # the upstream reader notices the dead socket and ends the session
            elif type(out) is ToBrowser:
                try:
                    ws.send_frame(out.data, OP_TEXT)
                except OSError:
                    break
            else:
                self.end(out)  # type: ignore[arg-type]
                return
        if ws.close_code not in (None, CLOSE_NORMAL) and ws.peer_close_code is None:
            # We closed it for a protocol breach (1002 / 1007 / 1009): that is the end reason.
            self.end(Close(ws.close_code, ws.close_reason))
        else:
            self.end(Close(CLOSE_NORMAL, "browser_closed"))

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
        recv, send, count = up.recv_frame, self.ws.send_frame, 0
        try:
            while (got := recv()) is not None:
                send(got[1], got[0])
                count += 1
        except OSError:
            self.end(Close(CLOSE_NORMAL, "browser_closed"))
        finally:
            self.frames_out += count
        self.end(self.core.upstream_closed(up.close_code))

    # -- lifecycle --------------------------------------------------------------------------
    def run(self) -> str:
        started = time.monotonic()
        ctx = {"session_id": self.session_id, "client_ip": self.client_ip}
        log.info("browser session started", extra=ctx)
        metrics.ACTIVE.labels(SURFACE).inc()
        readers = [gevent.spawn(self._upstream_loop), gevent.spawn(self._browser_loop)]
        try:
            if not self._done.wait(self.time_limit_s):
                self.end(self.core.time_limit())
        finally:
            close = self.ending or Close(CLOSE_INTERNAL, "relay_error")
            self._release(readers, close)
            self._record(close, time.monotonic() - started, ctx)
        return close.reason

    def _record(self, close: Close, seconds: float, ctx: dict[str, str]) -> None:
        label = "upstream_closed" if close.reason.startswith("upstream_closed") else close.reason
        metrics.ACTIVE.labels(SURFACE).dec()
        metrics.SESSIONS.labels(SURFACE, label).inc()
        metrics.DURATION.labels(SURFACE).observe(seconds)
        metrics.FRAMES.labels(SURFACE, "in").inc(self.frames_in)
        metrics.FRAMES.labels(SURFACE, "out").inc(self.frames_out)
        log.info(
            "browser session ended after %.1f s (%d in, %d out, close %d)",
            seconds,
            self.frames_in,
            self.frames_out,
            close.code,
            extra={**ctx, "reason": close.reason},
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
