"""The gevent side of a phone call: move frames between Twilio, the bridge and OpenAI.

All decisions live in :class:`relay.twilio_bridge.TwilioBridge`; this module only reads,
writes and schedules. Three greenlets per call: Twilio reader, OpenAI reader, and a ticker for
the time cap. Whichever side ends first ends the call, and everything is released in
``finally`` blocks (no socket or greenlet outlives the call).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent
import gevent.event
import orjson
import redis

from common.config import Config
from common.redis_util import get_redis, key
from relay.twilio_bridge import BridgeSettings, EndCall, Output, ToOpenAI, ToTwilio, TwilioBridge

log = logging.getLogger(__name__)

#: How often the bridge is asked about the clock (time cap, fallbacks).
TICK_SECONDS = 0.1
#: How long Twilio's /twilio/voice/after may still ask why the stream ended.
END_REASON_TTL_SECONDS = 600


class Downstream(Protocol):
    """The Twilio WebSocket, as the relay server exposes it."""

    def receive(self) -> str | bytes | None: ...
    def send(self, message: str) -> None: ...
    def close(self, code: int = 1000, message: str = "") -> None: ...


class Upstream(Protocol):
    """The OpenAI Realtime WebSocket."""

    def recv(self) -> str | bytes: ...
    def send(self, message: str) -> Any: ...
    def close(self) -> None: ...


def settings_from(cfg: Config) -> BridgeSettings:
    return BridgeSettings(
        model=cfg.openai_realtime_model,
        voice=cfg.realtime_voice,
        turn_detection=cfg.realtime_turn_detection,
        time_limit_s=cfg.session_time_limit_seconds,
        goodbye_fallback_s=cfg.goodbye_fallback_seconds,
    )


def record_end(call_sid: str, reason: str) -> None:
    """Tell the web process (``/twilio/voice/after``) that this end was deliberate."""
    if not call_sid:
        return
    try:
        get_redis().set(key("call_end", call_sid), reason, ex=END_REASON_TTL_SECONDS)
    except redis.RedisError:
        log.warning("could not record why the call ended", extra={"call_sid": call_sid})


class TwilioCall:
    """Runs one call to completion: ``TwilioCall(...).run()`` returns when it is over."""

    def __init__(
        self,
        cfg: Config,
        downstream: Downstream,
        open_upstream: Callable[[], Upstream],
        end_call: Callable[[str], None] | None = None,
    ):
        self.cfg = cfg
        self.down = downstream
        self.open_upstream = open_upstream
        self.end_call_rest = end_call  # REST fallback: set the call completed
        self.bridge = TwilioBridge(settings_from(cfg), time.monotonic())
        self.up: Upstream | None = None
        self._done = gevent.event.Event()

    # -- output -----------------------------------------------------------------------------
    def _apply(self, outputs: list[Output]) -> None:
        for out in outputs:
            if isinstance(out, ToTwilio):
                try:
                    self.down.send(out.text)
                except Exception:
                    self._done.set()
            elif isinstance(out, ToOpenAI):
                if self.up is not None:
                    try:
                        self.up.send(out.text)
                    except Exception:
                        self._apply(self.bridge.on_upstream_closed(time.monotonic()))
            elif isinstance(out, EndCall):
                self._done.set()

    # -- loops ------------------------------------------------------------------------------
    def _twilio_loop(self) -> None:
        try:
            while not self._done.is_set():
                raw = self.down.receive()
                if raw is None:
                    break
                try:
                    msg = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    log.warning(
                        "malformed Media Streams frame ignored",
                        extra={
                            "call_sid": self.bridge.call_sid,
                            "stream_sid": self.bridge.stream_sid,
                        },
                    )
                    continue
                if isinstance(msg, dict):
                    self._apply(self.bridge.on_twilio(msg, time.monotonic()))
        except Exception as exc:
            log.info(
                "Twilio socket ended: %s",
                type(exc).__name__,
                extra={"call_sid": self.bridge.call_sid},
            )
        if self.bridge.ended is None:
            self.bridge.ended = EndCall("twilio_closed", deliberate=True)
        self._done.set()

    def _openai_loop(self) -> None:
        try:
            self.up = self.open_upstream()
        except Exception as exc:
            log.error(
                "OpenAI Realtime connect failed: %s",
                str(exc)[:200],
                extra={"call_sid": self.bridge.call_sid, "reason": "upstream_connect"},
            )
            self._apply(self.bridge.on_upstream_closed(time.monotonic()))
            return
        self._apply(self.bridge.on_upstream_open(time.monotonic()))
        try:
            while not self._done.is_set():
                raw = self.up.recv()
                if not raw:
                    break
                event = orjson.loads(raw)
                if isinstance(event, dict):
                    self._apply(self.bridge.on_openai(event, time.monotonic()))
        except Exception as exc:
            if not self._done.is_set():
                log.warning(
                    "OpenAI Realtime socket dropped: %s",
                    type(exc).__name__,
                    extra={"call_sid": self.bridge.call_sid},
                )
        if not self._done.is_set():
            self._apply(self.bridge.on_upstream_closed(time.monotonic()))

    def _tick_loop(self) -> None:
        while not self._done.wait(TICK_SECONDS):
            self._apply(self.bridge.on_tick(time.monotonic()))

    def run(self) -> EndCall:
        greenlets = [gevent.spawn(self._openai_loop), gevent.spawn(self._tick_loop)]
        reader = gevent.spawn(self._twilio_loop)
        try:
            self._done.wait()
        finally:
            ended = self.bridge.ended or EndCall("relay_error", deliberate=False)
            if ended.deliberate:
                record_end(self.bridge.call_sid, ended.reason)
            if self.up is not None:
                with contextlib.suppress(Exception):
                    self.up.close()
            with contextlib.suppress(Exception):
                self.down.close(1000, ended.reason)
            gevent.killall([*greenlets, reader], block=True, timeout=2)
            self._finish(ended)
        return ended

    def _finish(self, ended: EndCall) -> None:
        ctx = {
            "call_sid": self.bridge.call_sid,
            "stream_sid": self.bridge.stream_sid,
            "reason": ended.reason,
        }
        log.info(
            "call ended (%s); transcript:\n%s",
            "deliberate" if ended.deliberate else "failure",
            self.bridge.transcript_text() or "(empty)",
            extra=ctx,
        )
        if (
            ended.reason in ("voicemail_left", "voicemail_timeout", "time_limit")
            and self.end_call_rest is not None
        ):
            # Closing the stream ends <Connect>; the REST update is the fallback that hangs up
            # even if Twilio were to continue the call.
            gevent.spawn(self._complete_call)

    def _complete_call(self) -> None:
        try:
            assert self.end_call_rest is not None
            self.end_call_rest(self.bridge.call_sid)
        except Exception as exc:
            log.info(
                "REST hang-up fallback failed: %s",
                str(exc)[:200],
                extra={"call_sid": self.bridge.call_sid},
            )
