"""The phone call bridge: Twilio Media Streams on one side, OpenAI Realtime (GA) on the other.

A plain class in the sans-I/O style: feed it parsed messages and the time, and it returns what to
send where. The gevent code around it (:mod:`relay.call.session`) only reads, writes and
schedules, so barge-in, voicemail and the time cap are tested here without a network.

It is composed of small parts with narrow inputs, which it wires together and routes events to:
the call's :class:`~relay.call.phase.Phase`, the :class:`~relay.call.ledger.ResponseLedger`
of the assistant's responses, the :class:`~relay.call.playout.Playout` of its audio (marks,
barge-in), the :class:`~relay.call.tool_flow.ToolFlow` of its tools, the opening
:class:`~relay.call.greeting.Greeting`, and :class:`~relay.call.continuity.Continuity` for
reconnects and handovers. Messages are built by the protocol modules
(:mod:`relay.protocol.twilio_media`, :mod:`relay.protocol.realtime`).

Media frames are the hot path (50 per second per call each way): a Twilio ``media`` payload is
checked to be base64 and copied into ``input_audio_buffer.append`` as is; an
``response.output_audio.delta`` becomes a Twilio ``media`` (+ ``mark``) the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from common import prompts
from common.end_reasons import EndReason
from common.stream_twiml import other_party
from relay.call.continuity import Continuity
from relay.call.core import CallCore
from relay.call.greeting import (
    Greeting,
    Verdict,
    greeting_item,
    log_unfinished,
    session_update,
)
from relay.call.handover import CallState
from relay.call.ledger import ResponseLedger
from relay.call.outputs import Output, ToOpenAI, to_openai
from relay.call.phase import CallPhase
from relay.call.playout import Playout
from relay.call.replay import History
from relay.call.settings import BridgeSettings
from relay.call.tool_flow import TOOL_EVENTS, ToolFlow
from relay.call.tools import ToolBox, ToolOutcome
from relay.protocol import realtime, twilio_media
from relay.protocol.realtime import BENIGN_ERRORS, ResponseEnd, response_of, transcript_of

log = logging.getLogger(__name__)

TALKING = CallPhase.TALKING

VOICEMAIL_PLAYED = "voicemail_played"
GOODBYE_PLAYED = "goodbye_played"


class TwilioBridge(CallCore):
    """One call on Realtime. Not thread-safe; the relay drives it from one greenlet."""

    def __init__(self, settings: BridgeSettings, now: float, call_sid: str = ""):
        super().__init__(now, call_sid, settings.reconnect_attempts)
        self.s = settings
        self.ledger = ResponseLedger(self.transcript, History())
        self.greeting = Greeting(voicemail=False)
        self.playout = Playout(
            stream=self.stream, playback=self.playback, ledger=self.ledger, phase=self.phase
        )
        self.tool_flow = ToolFlow(
            goodbye_fallback_s=settings.goodbye_fallback_s,
            ledger=self.ledger,
            phase=self.phase,
            playback=self.playback,
            stream=self.stream,
            transcript=self.transcript,
            ending=self.call_end,
        )
        self.continuity = Continuity(
            settings=settings,
            info=self.info,
            link=self.link,
            ledger=self.ledger,
            playback=self.playback,
            phase=self.phase,
            greeting=self.greeting,
            ending=self.call_end,
            session_update=self._session_update,
            ask_for_greeting=self._ask_for_greeting,
            say_goodbye=self._say_goodbye,
            has_tools=lambda: self.tool_flow.tools is not None,
        )
        self._goodbye_deadline: float | None = None

    # -- what the rest of the relay reads (the parts own the state) -------------------------
    @property
    def tools(self) -> ToolBox | None:
        return self.tool_flow.tools

    @property
    def transfers(self) -> list[dict[str, str]]:
        return self.tool_flow.transfers

    @property
    def barge_ins(self) -> int:
        return self.playout.barge_ins

    def _session_update(self) -> dict[str, Any]:
        return session_update(self.s, self.info.voicemail, self.tool_flow.definitions())

    # -- Twilio → ------------------------------------------------------------------------------
    def on_twilio(self, msg: dict[str, Any], now: float) -> list[Output]:
        out: list[Output] = []
        event = msg.get("event")
        if event == "media":
            # The hot path (50 a second): plain attribute reads, no property calls.
            link = self.link
            if self.phase.now is not TALKING or self.info.voicemail:
                return out
            payload = twilio_media.media_payload(msg)
            if payload is None:
                self.bad_media += 1  # not base64: never spliced into JSON, never forwarded
            elif link.open and not link.awaiting_resume:
                out.append(ToOpenAI(realtime.input_audio_append(payload)))
            elif not link.in_gap:  # OpenAI has not answered yet: sent, in order, once it does
                link.pending.append(realtime.input_audio_append(payload))
            # else: caller audio in a gap is dropped (queued, it would all arrive late)
            return out
        self._on_control(out, event, msg, now)
        self.link.hold(out)
        return out

    def _on_start(self, out: list[Output], start: twilio_media.Start, now: float) -> None:
        if not self._accept_start(out, start, now):
            return
        info = self.info
        self.tool_flow.start(self.s.tools, other_party(info.params), info.voicemail)
        if self._resuming(out):
            return
        out.append(to_openai(self._session_update()))
        out.append(to_openai(greeting_item(info.kind)))
        self.greeting.reset(info.voicemail)
        self._ask_for_greeting(out)
        if info.voicemail:
            # If the machine never lets the message finish, do not hold the line forever.
            info.voicemail_deadline = now + self.s.goodbye_fallback_s + 40.0

    def _ask_for_greeting(self, out: list[Output]) -> None:
        """The greeting's user item is in the conversation; this asks for (another) answer."""
        self.greeting.asked()
        out.append(to_openai(realtime.response_create()))

    def _on_mark(self, out: list[Output], name: str, now: float) -> None:
        purpose = self.playback.echoed(name, now)
        if purpose is not None and self.tool_flow.on_mark(out, purpose):
            pass
        elif purpose == VOICEMAIL_PLAYED:
            self.call_end.emit(out, EndReason.VOICEMAIL_LEFT, deliberate=True)
        elif purpose == GOODBYE_PLAYED:
            self.call_end.emit(out, EndReason.TIME_LIMIT, deliberate=True)

    # -- OpenAI → ------------------------------------------------------------------------------
    def on_openai(self, event: dict[str, Any], now: float) -> list[Output]:
        out: list[Output] = []
        kind = event.get("type")
        if kind in TOOL_EVENTS:
            self.tool_flow.on_event(out, event, now)
        if kind == "response.output_audio.delta":
            self.playout.on_delta(out, event, now)
        elif kind == "input_audio_buffer.speech_started":
            if not self.info.voicemail:  # no barge-in on a voicemail
                self.playout.barge_in(out, now)
        elif kind == "response.created":
            rid = response_of(event).get("id")
            self.ledger.created(rid)
            self.greeting.on_created(str(rid))
            self.tool_flow.on_created(str(rid))
        elif kind == "response.done":
            response = response_of(event)
            self.playout.flush_marks(out, str(response.get("id") or ""))
            self._on_response_done(out, response, now)
            self.tool_flow.on_response_done(out, response)
        elif kind == "response.output_audio.done":
            self.playout.flush_marks(out, str(event.get("response_id") or ""))
        elif kind == "response.output_audio_transcript.delta":
            self.ledger.delta(str(event.get("response_id") or ""), event.get("delta"))
        elif kind == "response.output_audio_transcript.done":
            self.ledger.said(str(event.get("response_id") or ""), event.get("transcript"))
        elif kind == "conversation.item.input_audio_transcription.completed":
            text = str(event.get("transcript") or "")
            self.transcript.add("caller", text)
            self.ledger.history.caller(text)
        elif kind == "error":
            err = event.get("error") or {}
            code = err.get("code")
            if code not in BENIGN_ERRORS:
                log.warning(
                    "OpenAI error: %s %s",
                    code,
                    str(err.get("message"))[:200],
                    extra=self._log_ctx(),
                )
        if out and not self.link.open:
            self.link.hold(out)
        return out

    def _on_response_done(self, out: list[Output], response: dict[str, Any], now: float) -> None:
        end = ResponseEnd.of(response)
        response_id = response.get("id")
        self.ledger.done(response_id)
        if end.status != "completed":
            log_unfinished(end, self._log_ctx())
        if response_id in self.ledger.cut_off and not self.ledger.has_line(response_id):
            # A cancelled response may end without a transcript event; its output has one.
            self.ledger.said(str(response_id), transcript_of(response))
        verdict = self.greeting.on_done(end, end.id in self.ledger.discarded)
        if verdict is Verdict.RETRY:
            log.warning(
                "asking again for the %s",
                "voicemail message" if self.info.voicemail else "greeting",
                extra={**self._log_ctx(), "attempt": self.greeting.attempts + 1},
            )
            self._ask_for_greeting(out)
        elif verdict is Verdict.GIVE_UP:
            voicemail = self.info.voicemail
            failed = EndReason.VOICEMAIL_FAILED if voicemail else EndReason.GREETING_FAILED
            self.call_end.emit(out, failed, deliberate=False)
        elif verdict is Verdict.SPOKEN and self.info.voicemail and self.phase.talking:
            # Hang up only once Twilio says the whole message has played: hanging up on
            # OpenAI's response.done would cut off the audio still queued at Twilio.
            self.playout.sentinel(out, VOICEMAIL_PLAYED)
        elif self.phase.is_(CallPhase.GOODBYE_PENDING) and self.ledger.active is None:
            self._say_goodbye(out, now)
        elif self.phase.is_(CallPhase.GOODBYE) and response_id not in self.ledger.discarded:
            self.phase.to(CallPhase.DONE)
            if end.status == "failed":  # the apology, not silence
                self.call_end.emit(out, EndReason.GOODBYE_FAILED, deliberate=False)
                return
            self.playout.sentinel(out, GOODBYE_PLAYED)

    # -- time ------------------------------------------------------------------------------------
    def on_tick(self, now: float) -> list[Output]:
        """Called a few times per second: the time cap and the fallbacks."""
        out: list[Output] = []
        if self.call_end.ended is not None:
            return out
        self.tool_flow.on_tick(out, now, self._log_ctx())
        deadline = self.info.voicemail_deadline
        if deadline is not None and now >= deadline:
            if self.greeting.spoken:
                self.call_end.emit(out, EndReason.VOICEMAIL_TIMEOUT, deliberate=True)
            else:  # never said in full: no voicemail to report
                self.call_end.emit(out, EndReason.VOICEMAIL_FAILED, deliberate=False)
        elif self.phase.talking and now - self.info.started_at >= self.s.time_limit_s:
            self._goodbye_deadline = now + self.s.goodbye_fallback_s
            if self.ledger.active is not None:
                self.phase.to(CallPhase.GOODBYE_PENDING)
                self.playout.cut_active(out, now, "cut off by the time limit")
            else:
                self._say_goodbye(out, now)
        elif self._goodbye_deadline is not None and now >= self._goodbye_deadline:
            self.call_end.emit(out, EndReason.TIME_LIMIT, deliberate=True)
        if out and not self.link.open:
            self.link.hold(out)
        return out

    def _say_goodbye(self, out: list[Output], now: float) -> None:
        self.phase.to(CallPhase.GOODBYE)
        instructions = f'Say exactly "{prompts.TIME_LIMIT_SENTENCE}" and nothing else.'
        tool_choice = "none" if self.tool_flow.tools is not None else None
        out.append(
            to_openai(
                realtime.response_create(instructions, conversation="none", tool_choice=tool_choice)
            )
        )

    # -- the upstream, handovers, tools: delegated ------------------------------------------------
    def on_upstream_open(self, now: float) -> list[Output]:
        return self.continuity.on_upstream_open(now)

    def on_upstream_closed(self, now: float) -> list[Output]:
        out = self.continuity.on_upstream_closed(now)
        self.link.hold(out)
        return out

    def hand_over(self, now: float) -> CallState | None:
        carry_on = self.continuity.prepare_hand_over(now)
        if carry_on is None:
            return None
        turns = self.ledger.history.to_json()
        return self._freeze(now, turns, self.greeting.spoken, continue_reply=carry_on)

    def on_resume(self, state: CallState | None, now: float, gap: float) -> list[Output]:
        out = self.continuity.on_resume(state, now, gap, self.transcript.lines)
        self.link.hold(out)
        return out

    def on_tool_result(self, done: ToolOutcome, result: str, now: float) -> list[Output]:
        out = self.tool_flow.on_result(done, result, now)
        self.link.hold(out)
        return out

    def tool_calls_record(self) -> list[dict[str, Any]]:
        return self.tool_flow.record()
