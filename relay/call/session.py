"""The gevent side of a phone call: move frames between Twilio, the bridge and OpenAI.

All decisions live in :class:`relay.call.bridge.TwilioBridge`; this module only reads,
writes and schedules. Per call, a greenlet per side opens and watches it while its messages
arrive through hub callbacks (:mod:`relay.wire.hub_io`), and one shared ticker drives the clocks.
Whichever side ends first ends the call, and everything is released in ``finally`` blocks
(no socket or greenlet outlives the call).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

import gevent
import gevent.event
import orjson
import redis

from common import live_calls
from common.config import Config
from common.end_reasons import EndReason
from common.names import call_end_key
from common.redis_util import get_redis
from relay import metrics
from relay.call import handover
from relay.call.actions import ToolRunner
from relay.call.after_call import live_entry
from relay.call.engines import Bridge, new_bridge
from relay.call.handover import LoadResume
from relay.call.live_feed import publish_transcript
from relay.call.outputs import EndCall, Output, RunTool, ToOpenAI, ToTwilio
from relay.call.reconnect import Reconnect
from relay.call.ticker import TICKER
from relay.session_summary import SessionSummary
from relay.wire.hub_io import PeerNotReading, pump
from relay.wire.upstream import Upstream

log = logging.getLogger(__name__)


class Downstream(Protocol):
    """The Twilio WebSocket: :class:`relay.wire.server_socket.FastWebSocket` (whose ``start_hub`` /
    ``stop_hub`` a test double may lack: then the call reads it from a greenlet)."""

    def receive_raw(self) -> tuple[int, bytes] | None: ...
    def send(self, message: str) -> None: ...
    def send_many(self, messages: list[str]) -> None: ...
    def close(self, code: int = 1000, message: str = "") -> None: ...


#: How long Twilio's /twilio/voice/after may still ask why the stream ended.
END_REASON_TTL_SECONDS = 600
#: Deliberate ends that also set the call completed through REST (:func:`rest_hang_up`).
REST_HANGUP_REASONS = frozenset(
    {
        EndReason.VOICEMAIL_LEFT,
        EndReason.VOICEMAIL_TIMEOUT,
        EndReason.TIME_LIMIT,
        EndReason.ASSISTANT_HUNG_UP,
    }
)


def record_end(call_sid: str, reason: EndReason) -> None:
    """Tell the web process (``/twilio/voice/after``) that this end was deliberate: it hangs
    up instead of apologising."""
    if not call_sid:
        return
    try:
        get_redis().set(call_end_key(call_sid), str(reason), ex=END_REASON_TTL_SECONDS)
    except redis.RedisError:
        log.warning("could not record why the call ended", extra={"call_sid": call_sid})


def rest_hang_up(end_call: Callable[[str], None], call_sid: str) -> None:
    """Set the call completed (a greenlet). Closing the stream ends ``<Connect>``; this is
    the fallback that hangs up even if Twilio were to continue the call."""
    try:
        end_call(call_sid)
    except Exception as exc:
        log.info("REST hang-up fallback failed: %s", str(exc)[:200], extra={"call_sid": call_sid})


class TwilioCall:
    """Runs one call to completion: ``TwilioCall(...).run()`` returns when it is over."""

    def __init__(
        self,
        cfg: Config,
        downstream: Downstream,
        open_upstream: Callable[[], Upstream],
        end_call: Callable[[str], None] | None = None,
        call_sid: str = "",
    ):
        """``call_sid`` is the stream token's: the only call this stream may act for."""
        self.cfg = cfg
        self.down = downstream
        self.open_upstream = open_upstream
        self.end_call_rest = end_call  # REST fallback: set the call completed
        self.bridge: Bridge = new_bridge(cfg, time.monotonic(), call_sid)
        self.up: Upstream | None = None
        self._done = gevent.event.Event()
        self._helpers: list[gevent.Greenlet] = []  # killed with the call
        self.frames_in = 0  # Twilio -> OpenAI
        self.frames_out = 0  # OpenAI -> Twilio
        self.malformed = 0
        self._published = 0  # transcript lines already published
        self._reconnect: Reconnect | None = None  # the bridge asked for a new upstream
        self._actions: list[gevent.Greenlet] = []  # tool actions: waited for, never killed
        self._runner: ToolRunner | None = None
        self.summary: SessionSummary | None = None  # set as run() ends, even when killed

    def stop(self, reason: EndReason) -> None:
        """End the call from outside (server shutdown): the failure path, so the caller hears
        the apology rather than silence (an end already decided stands)."""
        self.bridge.end(reason, deliberate=False)
        self._done.set()

    # -- output -----------------------------------------------------------------------------
    def _apply(self, outputs: list[Output]) -> None:
        """Send what the bridge asked for, in order. Consecutive messages to one side go out
        in one write (a delta's ``media`` + ``mark``; a barge-in's cancel + truncate)."""
        i, n = 0, len(outputs)
        while i < n:
            out = outputs[i]
            kind = type(out)
            j = i + 1
            if kind is ToTwilio or kind is ToOpenAI:
                while j < n and type(outputs[j]) is kind:
                    j += 1
            if kind is ToTwilio:
                try:
                    if j - i == 1:
                        self.down.send(out.text)
                    else:
                        self.down.send_many([o.text for o in outputs[i:j]])
                    self.frames_out += j - i
                except PeerNotReading as exc:
                    # Twilio takes audio as fast as it comes; one that has left this much
                    # unread is broken, and holding more would only grow the process.
                    if self.bridge.ended is None:
                        log.warning(
                            "Twilio stopped reading the call's audio: %s",
                            exc,
                            extra={"call_sid": self.bridge.call_sid, "reason": "twilio_stalled"},
                        )
                    self.bridge.end(EndReason.TWILIO_STALLED)
                    self._done.set()
                except Exception:
                    self._done.set()
            elif kind is ToOpenAI:
                if self.up is not None:
                    try:
                        if j - i == 1:
                            self.up.send(out.text)
                        else:
                            self.up.send_many([o.text.encode() for o in outputs[i:j]])
                        self.frames_in += j - i
                    except Exception:
                        # The reader sees the dead socket and asks the bridge what next.
                        with contextlib.suppress(Exception):
                            self.up.close()
            elif isinstance(out, EndCall):
                self._done.set()
            elif isinstance(out, Reconnect):
                self._reconnect = out
            elif isinstance(out, LoadResume):
                self._helpers.append(gevent.spawn(self._load_resume, out.resume_id))
            elif isinstance(out, RunTool):
                self._actions.append(gevent.spawn(self._run_tool, out))
            i = j

    # -- loops ------------------------------------------------------------------------------
    def _on_twilio(self, _opcode: int, payload: bytes) -> None:
        """One Media Streams message (may run in the hub: nothing here blocks)."""
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._malformed()
            return
        if not isinstance(msg, dict):
            self._malformed()
            return
        try:
            outputs = self.bridge.on_twilio(msg, time.monotonic())
        except Exception:  # a frame the bridge cannot use must not end the call
            self._malformed()
            return
        self._apply(outputs)

    def _twilio_loop(self) -> None:
        try:
            pump(self.down, self._on_twilio, self._done)
        except Exception as exc:
            log.info(
                "Twilio socket ended: %s",
                type(exc).__name__,
                extra={"call_sid": self.bridge.call_sid},
            )
        self.bridge.on_twilio_closed()
        self._done.set()

    def _publish_transcript(self) -> None:
        """Send new transcript lines to ``gf:call_transcript:<CallSid>`` (Redis pub/sub), so
        ``python -m sandbox call`` and operators can follow a call live. Off the frame path:
        only a finished utterance gets here, and the publish runs in its own greenlet."""
        lines = self.bridge.transcript.lines[self._published :]
        self._published += len(lines)
        sid = self.bridge.call_sid
        if sid:
            gevent.spawn(publish_transcript, sid, lines)

    def _malformed(self) -> None:
        """Skip a frame that is not a JSON object; log the first few, count the rest (a
        broken peer must not flood the log)."""
        self.malformed += 1
        if self.malformed <= 3:
            log.warning(
                "malformed Media Streams frame ignored",
                extra={"call_sid": self.bridge.call_sid, "stream_sid": self.bridge.stream_sid},
            )

    def _openai_loop(self) -> None:
        """Open the upstream and read it; when it drops, the bridge says whether (and when) to
        dial again. One greenlet for the call's whole life, so only one upstream is live."""
        timeout: float | None = None
        while not self._done.is_set():
            up = self._open(timeout)
            if up is None:
                self._apply(self.bridge.on_upstream_closed(time.monotonic()))
            else:
                self.up = up
                self._apply(self.bridge.on_upstream_open(time.monotonic()))
                self._read(up)
                if self._done.is_set():
                    return
                with contextlib.suppress(Exception):
                    up.close()
                self._apply(self.bridge.on_upstream_closed(time.monotonic()))
            attempt, self._reconnect = self._reconnect, None
            if attempt is None:
                return  # the bridge ended the call
            gevent.sleep(attempt.delay_s)
            timeout = attempt.timeout_s

    def _open(self, timeout: float | None) -> Upstream | None:
        try:
            with gevent.Timeout(timeout):
                return self.open_upstream()
        except BaseException as exc:  # gevent.Timeout is a BaseException
            if isinstance(exc, gevent.GreenletExit):
                raise
            log.error(
                "OpenAI Realtime connect failed: %s",
                str(exc)[:200] or type(exc).__name__,
                extra={"call_sid": self.bridge.call_sid, "reason": "upstream_connect"},
            )
            return None

    def _on_openai(self, _opcode: int, raw: bytes) -> None:
        """One Realtime event (may run in the hub: nothing here blocks)."""
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning(
                "OpenAI Realtime socket dropped: JSONDecodeError",
                extra={"call_sid": self.bridge.call_sid},
            )
            if self.up is not None:
                self.up.close()
            return
        if isinstance(event, dict):
            self._apply(self.bridge.on_openai(event, time.monotonic()))
            if len(self.bridge.transcript.lines) > self._published:
                self._publish_transcript()

    def _read(self, up: Upstream) -> None:
        try:
            pump(up, self._on_openai, self._done)
        except Exception as exc:
            if not self._done.is_set():
                log.warning(
                    "OpenAI Realtime socket dropped: %s",
                    type(exc).__name__,
                    extra={"call_sid": self.bridge.call_sid},
                )
        if not self._done.is_set():
            log.warning(
                "OpenAI Realtime socket closed mid-call",
                extra={"call_sid": self.bridge.call_sid, "reason": "upstream_dropped"},
            )

    def _run_tool(self, run: RunTool) -> None:
        if self._runner is None:  # one per call: its Twilio client serves every tool call
            tools = self.bridge.tools
            caller = tools.caller if tools else ""
            self._runner = ToolRunner(self.cfg, self.bridge.call_sid, caller)
        result = self._runner.perform(run.outcome)
        self._apply(self.bridge.on_tool_result(run.outcome, result, time.monotonic()))

    def wait_for_actions(self, timeout: float) -> None:
        """The call is over: let tool actions under way finish, so its record has them."""
        gevent.joinall(self._actions, timeout=timeout)

    # -- handover (relay.call.handover) ----------------------------------------------------------
    def _load_resume(self, resume_id: str) -> None:
        state, gap = handover.load(self.bridge.call_sid, resume_id)
        self._apply(self.bridge.on_resume(state, time.monotonic(), gap))
        self._published = len(self.bridge.transcript.lines)  # published by the first relay

    def hand_over(self) -> bool:
        """Move the call to another relay (SIGTERM): save its state, redirect it through
        Twilio. Blocks for the Redis write and the REST request; False (and the call ends the
        old way, with the apology) when the call cannot move."""
        state = self.bridge.hand_over(time.monotonic())
        if state is None:
            metrics.HANDOVERS.labels("failed").inc()
            self.stop(EndReason.SERVER_SHUTDOWN)
            return False
        if self.up is not None:  # frozen: nothing more to say or hear on this session
            with contextlib.suppress(Exception):
                self.up.close()
        if not handover.move(self.cfg, state):
            self._apply(self.bridge.on_handover_failed())
            return False
        return True

    @property
    def call_sid(self) -> str:
        return self.bridge.call_sid

    def tick(self, now: float) -> None:
        """The clock, from :data:`relay.call.ticker.TICKER`: the bridge's time cap and fallbacks."""
        if self._done.is_set():
            return
        outputs = self.bridge.on_tick(now)
        if outputs:  # rare; a write may block, and the ticker serves every call
            self._helpers.append(gevent.spawn(self._apply, outputs))

    def run(self) -> SessionSummary:
        """The call, to its end; what it did, for :func:`relay.session_summary.record`."""
        started = time.monotonic()
        greenlets = [gevent.spawn(self._openai_loop)]
        self._helpers = greenlets
        reader = gevent.spawn(self._twilio_loop)
        TICKER.add(self)
        live = live_calls.track(lambda: live_entry(self))  # the console's calls in progress
        try:
            self._done.wait()
        finally:
            live.stop()
            TICKER.discard(self)
            ended = self.bridge.end(EndReason.RELAY_ERROR)  # unless it ended (it should have)
            if ended.deliberate:
                record_end(self.bridge.call_sid, ended.reason)
            if self.up is not None:
                with contextlib.suppress(Exception):
                    self.up.close()
            with contextlib.suppress(Exception):
                self.down.close(ended.close_code, ended.reason)
            gevent.killall([*greenlets, reader], block=True, timeout=2)
            if self.up is not None:  # opened while the call was ending: release it too
                with contextlib.suppress(Exception):
                    self.up.close()
            self.summary = summary = self._finish(ended, time.monotonic() - started)
        return summary

    def _finish(self, ended: EndCall, seconds: float) -> SessionSummary:
        bridge = self.bridge
        ctx = {"call_sid": bridge.call_sid, "stream_sid": bridge.stream_sid, "reason": ended.reason}
        # What callers said is personal data: the full transcript only at DEBUG.
        log.debug("call transcript:\n%s", bridge.transcript_text() or "(empty)", extra=ctx)
        if ended.reason in REST_HANGUP_REASONS and self.end_call_rest is not None:
            gevent.spawn(rest_hang_up, self.end_call_rest, bridge.call_sid)
        lines = bridge.transcript.lines
        return SessionSummary(
            kind="phone",
            session_id=bridge.call_sid,
            reason=ended.reason,
            deliberate=ended.deliberate,
            close_code=ended.close_code,
            duration_s=seconds,
            elapsed_s=time.monotonic() - bridge.info.started_at,
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            malformed=self.malformed,
            bad_media=bridge.bad_media,
            transcript_lines=len(lines),
            caller_lines=sum(1 for who, _ in lines if who == "caller"),
            barge_ins=bridge.barge_ins,
            stream_sid=bridge.stream_sid,
        )
