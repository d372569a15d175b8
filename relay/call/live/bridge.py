"""A phone call on OpenAI GPT-Live: Twilio Media Streams on one side, a Live session on the
other. Sans-I/O like :class:`relay.call.bridge.TwilioBridge`, with the same inputs and outputs,
so :class:`relay.call.session.TwilioCall` drives either engine.

What differs from Realtime: ``session.start`` (then ``session.started``) instead of
``session.update``; μ-law passes through both ways; the voice model decides when to speak and
when to yield, so there are no responses to track, cancel or truncate. The relay paces the
assistant's audio itself (:mod:`relay.call.live.pacer`) and drops what the caller has not
heard when they talk over it. Transcripts come as fragments for both sides
(:mod:`relay.call.live.turns`). Tools run through a Responses delegation
(:mod:`relay.call.live.tools`). Lines the call ends on are followed by
:mod:`relay.call.live.closing`.
"""

from __future__ import annotations

import logging
from typing import Any

from common import prompts
from common.end_reasons import EndReason
from common.stream_twiml import other_party
from relay.call.core import CallCore
from relay.call.handover import CallState
from relay.call.live.closing import GOODBYE, TOOL, VOICEMAIL, Closing
from relay.call.live.pacer import Pacer
from relay.call.live.settings import LiveSettings
from relay.call.live.speech import SpeechDetector
from relay.call.live.tools import LiveToolFlow
from relay.call.live.turns import ASSISTANT, CALLER, GAP_SECONDS, Turns
from relay.call.outputs import EndCall, Output, ToOpenAI, to_openai
from relay.call.phase import CallPhase
from relay.call.reconnect import APOLOGY_GAP_SECONDS
from relay.call.replay import History
from relay.call.tools import ToolBox, ToolOutcome
from relay.protocol import live, twilio_media

log = logging.getLogger(__name__)

#: μ-law silence for 20 ms: sent in place of a machine's audio while the voicemail plays.
SILENCE = "/" * 212 + "w=="  # base64 of 160 bytes of 0xFF
#: Live session ends that a new session can carry on from (the history goes with it).
RECOVERABLE = ("expired", "connection_lost")
_START = '{"type":"session.start"'


class LiveBridge(CallCore):
    """One call on GPT-Live. Not thread-safe; the relay drives it from one greenlet."""

    def __init__(self, settings: LiveSettings, now: float, call_sid: str = ""):
        super().__init__(now, call_sid, settings.reconnect_attempts)
        self.s = settings
        self.history = History()
        self.pacer = Pacer(self.stream, self.playback)
        self.turns = Turns(self.transcript)
        self.speech = SpeechDetector()
        self.tool_flow = LiveToolFlow(phase=self.phase, transcript=self.transcript)
        self.barge_ins = 0
        self.unknown_events = 0
        self.ready = False  # session.started seen on the open upstream
        self.greeted = False  # the greeting (or voicemail message) was heard, at least begun
        self.closing: Closing | None = None
        self._turn = 0  # the assistant's turns, for playback ids
        self._last_audio_at = 0.0
        self._continue = False  # a reply was cut by a drop: carry on after the reopen

    # -- what the rest of the relay reads ------------------------------------------------------
    @property
    def tools(self) -> ToolBox | None:
        return self.tool_flow.tools

    @property
    def transfers(self) -> list[dict[str, str]]:
        return self.tool_flow.transfers

    def end(self, reason: EndReason, deliberate: bool = False, code: int = 1000) -> EndCall:
        """End the call (the first end stands); the line being spoken goes to the transcript."""
        self._remember(self.turns.close())
        return self.call_end.end(reason, deliberate, code)

    def _hold(self, out: list[Output]) -> list[Output]:
        """Messages for OpenAI wait until the session has started (``session.start`` goes)."""
        if not self.ready:
            kept = []
            for o in out:
                if type(o) is ToOpenAI and not o.text.startswith(_START):
                    self.link.pending.append(o.text)
                else:
                    kept.append(o)
            out[:] = kept
        return out

    # -- Twilio → ------------------------------------------------------------------------------
    def on_twilio(self, msg: dict[str, Any], now: float) -> list[Output]:
        out: list[Output] = []
        event = msg.get("event")
        if event == "media":
            payload = twilio_media.media_payload(msg)
            if payload is None:
                self.bad_media += 1  # not base64: never spliced into JSON, never forwarded
                return out
            self.pacer.release(out, now)  # the caller's frames are the pacing clock
            if self.phase.talking and not self.info.voicemail and self.pacer.unheard(now):
                if self.speech.frame(payload):
                    self._barge_in(out, now)
            else:
                self.speech.reset()
            if self.link.in_gap or (not self.phase.talking and not self.info.voicemail):
                return out  # a gap, or the closing line: the caller cannot interrupt it
            # The model hears silence while it leaves a voicemail: a machine's beep must not
            # make it yield. It keeps hearing the line otherwise (it listens while it speaks).
            audio = SILENCE if self.info.voicemail else payload
            if self.ready:
                out.append(ToOpenAI(live.input_audio_append(audio)))
            elif self.link.open or not self.link.in_gap:
                self.link.pending.append(live.input_audio_append(audio))
            return out
        self._on_control(out, event, msg, now)
        return self._hold(out)

    def _on_mark(self, out: list[Output], name: str, now: float) -> None:
        self.playback.echoed(name, now)
        self._check_closing(out, now)

    def _on_start(self, out: list[Output], start: twilio_media.Start, now: float) -> None:
        if not self._accept_start(out, start, now):
            return
        info = self.info
        self.tool_flow.start(self.s.tools, other_party(info.params), info.voicemail)
        if self._resuming(out):
            return
        if self.link.open:
            out.append(self._session_start())

    def _session_start(self) -> ToOpenAI:
        """``session.start``: sent first on every new upstream (it is never held)."""
        messages = [live.message(t.role, t.text) for t in self.history.turns]
        context = f"{self.info.kind.capitalize()} phone call with {other_party(self.info.params)}."
        event = live.session_start(
            model=self.s.model,
            instructions=self.s.voice_instructions(bool(self.tool_flow.tools)),
            voice=self.s.voice,
            delegation_model=self.s.delegation_model,
            delegation_instructions=self.s.business_instructions(bool(self.tool_flow.tools)),
            tools=self.tool_flow.definitions(),
            history=[live.message("developer", context), *messages],
        )
        return ToOpenAI(live.encode(event))

    # -- OpenAI → ------------------------------------------------------------------------------
    def on_openai(self, event: dict[str, Any], now: float) -> list[Output]:
        out: list[Output] = []
        kind = event.get("type")
        if kind == "session.output_audio.delta":
            delta = event.get("delta")
            if not twilio_media.is_base64(delta):
                self._odd("GPT-Live audio that is not base64 dropped")
            elif self.stream.sid:
                self._on_audio(out, delta, now)
        elif kind == "session.input_transcript.delta":
            self._on_transcript(out, CALLER, event, now)
        elif kind == "session.output_transcript.delta":
            self._on_transcript(out, ASSISTANT, event, now)
        elif kind == "response.event":
            self.tool_flow.on_response_event(out, event, now)
            self._follow_ending(now)
        elif kind == "session.started":
            self._on_started(out, now)
        elif kind == "session.closed":
            self._on_closed(out, live.closed_reason(event))
        elif kind not in live.IGNORED_EVENTS and kind != "error":
            self._odd(f"unknown GPT-Live event ignored: {str(kind)[:60]}")
        if kind == "error":
            kind_, code, message = live.error_of(event)
            log.warning("OpenAI Live error: %s %s %s", kind_, code, message, extra=self._log_ctx())
            if not self.ready:  # the session never started: nothing will answer the caller
                self.call_end.emit(out, EndReason.UPSTREAM_LOST, deliberate=False)
        return self._hold(out)

    def _odd(self, what: str) -> None:
        """Something from OpenAI the bridge cannot use: logged (the first few: a broken peer
        must not flood the log) and counted; the call goes on."""
        self.unknown_events += 1
        if self.unknown_events <= 3:
            log.warning(what, extra={**self._log_ctx(), "reason": "bad_upstream_event"})

    def _on_started(self, out: list[Output], now: float) -> None:
        if self.ready:
            return  # one start per session
        self.ready = True
        out.extend(self.link.flush())
        if self.link.awaiting_resume:
            return
        if not self.greeted:  # asked again on a new session until some of it was heard
            self._ask_opening(out, now)
        elif self.closing is not None and self.closing.purpose == GOODBYE:
            self._say(out, f'Say exactly "{prompts.TIME_LIMIT_SENTENCE}" and nothing else.')
        elif self._continue:
            self._say(out, "The line dropped for a moment. Carry on from where you were.")
        self._continue = False

    def _ask_opening(self, out: list[Output], now: float) -> None:
        if self.info.voicemail:
            message = prompts.greeting("voicemail")
            self.closing = Closing(VOICEMAIL, now + self.s.goodbye_fallback_s + 40.0)
            self._say(out, f'Say exactly "{message}" and nothing else, then stop talking.')
        else:
            self._say(out, f'Greet the caller by saying: "{prompts.greeting(self.info.kind)}"')

    def _say(self, out: list[Output], content: str) -> None:
        out.append(to_openai(live.instructions_append(content)))

    def _on_audio(self, out: list[Output], delta: str, now: float) -> None:
        if not self._turn or now - self._last_audio_at > GAP_SECONDS:
            self._turn += 1  # a new stretch of speech: its own playback books
            self.playback.forget_played(now)
        self._last_audio_at = now
        self.greeted = True
        if self.closing is not None:
            self.closing.spoke = True
        self.pacer.add(f"t{self._turn}", delta)
        self.pacer.release(out, now)

    def _on_transcript(self, out: list[Output], side: str, event: dict, now: float) -> None:
        got = live.transcript_delta(event)
        if got is None:
            return
        delta = got[0]
        if side == ASSISTANT and self.closing is not None:
            self.closing.said += delta
        talking = self.phase.talking and not self.info.voicemail
        if side == CALLER and talking and self.pacer.unheard(now):
            self._barge_in(out, now)
        self._remember(self.turns.add(side, delta, now))

    def _barge_in(self, out: list[Output], now: float) -> None:
        """The caller talks over the assistant: nothing they have not heard may play."""
        self.barge_ins += 1
        item = self.playback.items.get(f"t{self._turn}")
        heard = item.played_at(now) if item is not None else 0.0
        self.turns.mark_cut(f"interrupted at {heard / 1000:.1f} s")
        self.pacer.drop(out)
        self.speech.reset()

    def _remember(self, line: tuple[str, str] | None) -> None:
        """A line closed: keep it for a new session, as heard (the transcript has it)."""
        if line is None:
            return
        who, text = line
        if who == CALLER:
            self.history.caller(text)
        else:
            self.history.assistant(f"line{len(self.transcript.lines)}", text)

    # -- ends -----------------------------------------------------------------------------------
    def _check_closing(self, out: list[Output], now: float) -> None:
        """End the call once its closing line was heard (or its time ran out)."""
        closing = self.closing
        if closing is None or self.call_end.ended is not None:
            return
        heard = closing.heard(now, self._last_audio_at, self.pacer.unheard(now))
        if not heard and not closing.overdue(now):
            return
        self.closing = None
        if not heard:
            log.warning(
                "the %s line was not heard in time; acting anyway",
                closing.purpose,
                extra={**self._log_ctx(), "reason": "closing_fallback"},
            )
        ending = closing.end(heard)
        if ending is not None:
            self.call_end.emit(out, *ending)
        elif self.tool_flow.ending_heard(out):
            self.call_end.emit(out, EndReason.ASSISTANT_HUNG_UP, deliberate=True)

    def _follow_ending(self, now: float) -> None:
        """An accepted end_call / transfer: its closing line is followed from now on."""
        if self.tool_flow.ending is not None and self.closing is None:
            self.closing = Closing(TOOL, now + self.s.goodbye_fallback_s)

    def _on_closed(self, out: list[Output], reason: str) -> None:
        if reason == "close_requested" or self.call_end.ended is not None:
            return
        ctx = {**self._log_ctx(), "reason": reason}
        log.warning("OpenAI Live session closed: %s", reason, extra=ctx)
        if reason == "remote_hangup":
            self.call_end.emit(out, EndReason.CALLER_HUNG_UP, deliberate=True)
        elif reason not in RECOVERABLE:  # content, or a reason this relay does not know
            self.call_end.emit(out, EndReason.UPSTREAM_LOST, deliberate=False)
        # expired / connection_lost: the socket closes next and a new session carries on

    # -- time ----------------------------------------------------------------------------------
    def on_tick(self, now: float) -> list[Output]:
        out: list[Output] = []
        if self.call_end.ended is not None:
            return out
        self.pacer.release(out, now)
        self._remember(self.turns.idle(now))
        self._follow_ending(now)
        self._check_closing(out, now)
        if self.phase.talking and now - self.info.started_at >= self.s.time_limit_s:
            self.phase.to(CallPhase.GOODBYE)
            self.turns.mark_cut("cut off by the time limit")
            self.pacer.drop(out)
            self.closing = Closing(GOODBYE, now + self.s.goodbye_fallback_s)
            self._say(out, f'Say exactly "{prompts.TIME_LIMIT_SENTENCE}" and nothing else.')
        return self._hold(out)

    # -- the upstream ----------------------------------------------------------------------------
    def on_upstream_open(self, now: float) -> list[Output]:
        gap = self.link.opened(now)
        self.ready = False
        if gap is not None and self.info.started_at_start is not None:
            self.link.gaps.append(gap)
            self.link.reconnected += 1
            self._continue = self._continue or gap > APOLOGY_GAP_SECONDS
        if self.info.started_at_start is None or self.link.awaiting_resume:
            return []
        return [self._session_start()]

    def on_upstream_closed(self, now: float) -> list[Output]:
        out: list[Output] = []
        if self.call_end.ended is not None or self.phase.is_(CallPhase.HANDOVER):
            return out
        self.ready = False
        self._remember(self.turns.close())  # the new session is told what was said
        if self.link.dropped() and self.pacer.unheard(now) and self.phase.talking:
            self._continue = True
        attempt = self.link.next_attempt(now)
        if attempt is None:
            self.call_end.emit(out, EndReason.UPSTREAM_LOST, deliberate=False)
        else:
            out.append(attempt)
        return out

    def hand_over(self, now: float) -> CallState | None:
        info = self.info
        if (
            self.call_end.ended is not None
            or info.started_at_start is None
            or not info.bound
            or self.link.awaiting_resume
            or not self.phase.is_(CallPhase.TALKING, CallPhase.GOODBYE)
        ):
            return None
        self._remember(self.turns.close())
        return self._freeze(
            now, self.history.to_json(), self.greeted, continue_reply=self.pacer.unheard(now)
        )

    def on_resume(self, state: CallState | None, now: float, gap: float) -> list[Output]:
        out: list[Output] = []
        self.link.awaiting_resume = False
        if self.call_end.ended is not None:
            return out
        if state is None:
            self.greeted = True  # the call is under way: no second greeting
        else:
            self.info.kind, self.info.voicemail = state.kind, state.voicemail
            self.info.started_at = now - state.used_s
            self.transcript.lines[:] = [tuple(line) for line in state.lines]
            self.history = History.from_json(state.turns)
            self.greeted = state.greeting_spoken
            self._continue = state.continue_reply or gap > APOLOGY_GAP_SECONDS
            self.link.gaps.append(gap)
        if self.link.open:
            out.append(self._session_start())
        return out

    def on_tool_result(self, done: ToolOutcome, result: str, now: float) -> list[Output]:
        out = self.tool_flow.on_result(done, result, self.call_end.ended is not None)
        self._follow_ending(now)
        return self._hold(out)

    def tool_calls_record(self) -> list[dict[str, Any]]:
        return self.tool_flow.record()
