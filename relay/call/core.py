"""What a call bridge is on either engine: the call (:class:`~relay.call.info.CallInfo`), its
Twilio stream, phase, end, transcript, playback books and upstream link, and what Twilio's
``start`` and ``stop`` mean. :class:`relay.call.bridge.TwilioBridge` (Realtime) and
:class:`relay.call.live.bridge.LiveBridge` (GPT-Live) build on it and add their engine."""

from __future__ import annotations

import logging

from common.end_reasons import EndReason
from common.stream_twiml import Param, call_kind
from relay.call.handover import CallState, LoadResume
from relay.call.info import CallInfo
from relay.call.link import UpstreamLink
from relay.call.outputs import CallEnd, EndCall, Output, Transcript
from relay.call.phase import CallPhase, Phase
from relay.call.playback import PlaybackTracker
from relay.protocol import twilio_media
from relay.protocol.twilio_media import Start, StreamWriter

log = logging.getLogger(__name__)


class CallCore:
    def __init__(self, now: float, call_sid: str, reconnect_attempts: int):
        self.info = CallInfo(call_sid=call_sid, bound=bool(call_sid), started_at=now)
        self.stream = StreamWriter()
        self.phase = Phase()
        self.call_end = CallEnd()
        self.transcript = Transcript()
        self.playback = PlaybackTracker()
        self.link = UpstreamLink(reconnect_attempts)
        #: Media Streams frames refused (not base64, a repeated or malformed start).
        self.bad_media = 0

    # -- what the rest of the relay reads (the parts own the state) ---------------------------
    @property
    def call_sid(self) -> str:
        return self.info.call_sid

    @property
    def stream_sid(self) -> str:
        return self.stream.sid

    @property
    def params(self) -> dict[str, str]:
        return self.info.params

    @property
    def voicemail(self) -> bool:
        return self.info.voicemail

    @property
    def started_at_start(self) -> float | None:
        return self.info.started_at_start

    @property
    def ended(self) -> EndCall | None:
        return self.call_end.ended

    @property
    def gaps(self) -> list[float]:
        return self.link.gaps

    @property
    def reconnected(self) -> int:
        return self.link.reconnected

    @property
    def drops(self) -> int:
        return self.link.drops

    def end(self, reason: EndReason, deliberate: bool = False, code: int = 1000) -> EndCall:
        """End the call; the first end stands and is returned."""
        return self.call_end.end(reason, deliberate, code)

    def _log_ctx(self) -> dict[str, str]:
        return {"call_sid": self.info.call_sid, "stream_sid": self.stream.sid}

    def transcript_text(self) -> str:
        return self.transcript.text()

    # -- Twilio's messages other than media -------------------------------------------------------
    def _on_control(self, out: list[Output], event: object, msg: dict, now: float) -> None:
        """``mark``, ``start``, ``stop``: the same on every engine but for what a mark or a
        start then does (the engine's ``_on_mark`` / ``_on_start``)."""
        if event == "mark":
            name = twilio_media.mark_name(msg)
            if name is not None:
                self._on_mark(out, name, now)
        elif event == "start":
            start = twilio_media.parse_start(msg)
            if self.info.started_at_start is None and start is not None:
                self.info.started_at_start = now
                self._on_start(out, start, now)
            else:
                self.bad_media += 1  # a repeated or malformed start changes nothing
        elif event == "stop":
            self._on_stop(out)
        elif event not in ("connected", "dtmf"):
            log.info(
                "unknown Twilio event ignored",
                extra={**self._log_ctx(), "reason": str(event)[:40]},
            )

    def _on_mark(self, out: list[Output], name: str, now: float) -> None:
        raise NotImplementedError  # each engine's bridge says what a mark echo means

    def _on_start(self, out: list[Output], start: Start, now: float) -> None:
        raise NotImplementedError  # each engine's bridge opens its session its own way

    def _accept_start(self, out: list[Output], start: Start, now: float) -> bool:
        """Bind the stream and learn the call from ``start``; False (and the call ends) when
        the stream is not the token's call: a token opens a stream for that call only."""
        info = self.info
        self.stream.bind(start.stream_sid)
        if not info.bound or start.call_sid != info.call_sid:
            log.warning(
                "stream refused: start.callSid %s is not the token's call %s",
                start.call_sid[:40] or "(none)",
                info.call_sid or "(none)",
                extra={**self._log_ctx(), "reason": EndReason.CALL_SID_MISMATCH},
            )
            self.call_end.emit(out, EndReason.CALL_SID_MISMATCH, deliberate=False, code=1008)
            return False
        info.params = start.params
        info.kind = call_kind(info.params)
        info.voicemail = info.kind == "voicemail"
        info.started_at = now
        return True

    def _resuming(self, out: list[Output]) -> bool:
        """A stream another relay handed over (its ``resume`` parameter): load the saved call
        first, and do not greet (the call is under way)."""
        resume = self.info.params.get(Param.RESUME)
        if not resume:
            return False
        self.link.awaiting_resume = True
        out.append(LoadResume(resume))
        return True

    def _on_stop(self, out: list[Output]) -> None:
        """Twilio's ``stop``: the caller hung up, unless the call was moving on purpose."""
        if self.phase.is_(CallPhase.HANDOVER):  # Twilio moved the call to the new stream
            self.call_end.emit(out, EndReason.HANDED_OVER, deliberate=False)
        elif self.phase.is_(CallPhase.TRANSFERRING):  # the redirect to staff took the call
            self.call_end.emit(out, EndReason.TRANSFERRED, deliberate=True)
        else:
            self.call_end.emit(out, EndReason.CALLER_HUNG_UP, deliberate=True)

    def on_twilio_closed(self) -> EndCall:
        """Twilio's socket closed: the call ends (unless a ``stop`` or the bridge ended it
        first). After a handover that is the move (no end reason may be recorded: the new
        stream decides how the call ends). The end that stands is returned."""
        if self.phase.is_(CallPhase.HANDOVER):
            return self.call_end.end(EndReason.HANDED_OVER, deliberate=False)
        return self.call_end.end(EndReason.TWILIO_CLOSED, deliberate=True)

    def _freeze(
        self, now: float, turns: list[list[str]], greeting_spoken: bool, continue_reply: bool
    ) -> CallState:
        """The call as another relay needs it (a hand-over), the phase set to ``HANDOVER``."""
        info = self.info
        self.phase.to(CallPhase.HANDOVER)
        return CallState(
            call_sid=info.call_sid,
            kind=info.kind,
            voicemail=info.voicemail,
            params={k: v for k, v in info.params.items() if k != Param.RESUME},
            used_s=now - info.started_at,
            lines=list(self.transcript.lines),
            turns=turns,
            # A voicemail starts again from the top: the machine lost what was playing.
            greeting_spoken=greeting_spoken and not info.voicemail,
            continue_reply=continue_reply,
        )

    def on_handover_failed(self) -> list[Output]:
        """The redirect did not happen: end the call as a shutdown does (the apology)."""
        out: list[Output] = []
        self.call_end.emit(out, EndReason.SERVER_SHUTDOWN, deliberate=False)
        return out
