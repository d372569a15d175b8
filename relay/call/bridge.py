"""The phone call bridge: Twilio Media Streams on one side, OpenAI Realtime (GA) on the other.

A plain class in the sans-I/O style: feed it parsed messages and the time, and it returns what to
send where. The gevent code around it only reads, writes and schedules, so barge-in, voicemail
and the time cap are tested here without a network.

Media frames are the hot path (50 per second per call each way): a Twilio ``media`` payload is
copied into ``input_audio_buffer.append`` as is, and a ``response.output_audio.delta`` becomes a
Twilio ``media`` + ``mark`` by string assembly. Base64 is never decoded; it is safe to splice
into JSON because its alphabet needs no escaping.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from common import prompts
from common.end_reasons import EndReason
from relay.call.continuity import Continuity
from relay.call.greeting import (
    Greeting,
    ResponseEnd,
    Verdict,
    direction_of,
    greeting_item,
    log_unfinished,
)
from relay.call.handover import PARAMETER as RESUME_PARAMETER
from relay.call.handover import LoadResume
from relay.call.outputs import (
    BENIGN_ERRORS,
    BridgeSettings,
    EndCall,
    Output,
    ToOpenAI,
    ToTwilio,
    Transcript,
    dumps,
    transcript_of,
)
from relay.call.playback import PlaybackTracker
from relay.call.reconnect import Reconnects
from relay.call.replay import History
from relay.call.tool_flow import TOOL_EVENTS, ToolCalls

__all__ = ["BridgeSettings", "EndCall", "Output", "ToOpenAI", "ToTwilio", "TwilioBridge"]

log = logging.getLogger(__name__)

#: Base64 only: what may be spliced into JSON without escaping (one C-speed regex match).
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}").fullmatch


class TwilioBridge(ToolCalls, Continuity):
    """One call. Not thread-safe; the relay drives it from one greenlet at a time.

    Reconnects after an upstream drop and handovers to another relay live in
    :class:`relay.call.continuity.Continuity`, the assistant's tools in
    :class:`relay.call.tool_flow.ToolCalls`."""

    def __init__(self, settings: BridgeSettings, now: float, call_sid: str = ""):
        self.s = settings
        self.started_at = now
        self.stream_sid = ""
        #: The call this stream is bound to (the stream token's): every Redis key uses it.
        self.call_sid = call_sid
        self.bound = bool(call_sid)
        self.params: dict[str, str] = {}
        self.kind = "unknown"
        self.voicemail = False
        self.playback = PlaybackTracker()
        self.transcript = Transcript()
        self.ended: EndCall | None = None
        self._upstream_open = False
        self._pending_upstream: list[str] = []
        self._active_response: str | None = None
        self._discarded: set[str] = set()
        # Interrupted responses still belong in the call's transcript, marked as such.
        self._cut_off: dict[str, str] = {}  # response id → how it was cut off
        self._transcript_line: dict[str, int] = {}  # response id → its transcript line
        self._phase = "talking"  # talking → goodbye_pending → goodbye → done
        self._goodbye_deadline: float | None = None
        self.greeting = Greeting(voicemail=False)
        self._voicemail_deadline: float | None = None
        self.barge_ins = 0
        self.bad_media = 0
        self.started_at_start: float | None = None
        self.history = History()  # what was said, as heard: replayed into a new upstream
        self._said_so_far: dict[str, str] = {}  # response id -> transcript deltas
        self._heard: dict[str, float] = {}  # response id -> fraction the caller heard
        self._stale_items: set[str] = set()  # audio items of a dead upstream session
        self.reconnects = Reconnects(settings.reconnect_attempts)
        self.gaps: list[float] = []  # seconds without an upstream, per reconnect
        self.reconnected = self.drops = 0
        self._continue = False  # a reply was cut by a drop: ask for the rest on reopen
        self._awaiting_resume = False  # a resumed stream, until its saved state is loaded
        self._init_tools()

    # -- outputs ----------------------------------------------------------------------------
    def _openai(self, out: list[Output], obj: dict[str, Any] | str) -> None:
        text = obj if isinstance(obj, str) else dumps(obj)
        if self._upstream_open:
            out.append(ToOpenAI(text))
        else:
            self._pending_upstream.append(text)

    def _twilio(self, out: list[Output], obj: dict[str, Any]) -> None:
        out.append(ToTwilio(dumps(obj)))

    def end(self, reason: EndReason, deliberate: bool = False, code: int = 1000) -> EndCall:
        """End the call; the first end stands and is returned (a later one changes nothing,
        so a shutdown cannot relabel a hang-up). The only way anything sets :attr:`ended`."""
        if self.ended is None:
            self.ended = EndCall(reason, deliberate, code)
        return self.ended

    def _end(
        self, out: list[Output], reason: EndReason, deliberate: bool, code: int = 1000
    ) -> None:
        if self.ended is None:
            out.append(self.end(reason, deliberate, code))

    # -- Twilio → ----------------------------------------------------------------------------
    def on_twilio(self, msg: dict[str, Any], now: float) -> list[Output]:
        out: list[Output] = []
        event = msg.get("event")
        if event == "media":
            media = msg.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            if self._phase != "talking" or self.voicemail or self._gap():
                pass  # caller audio in a gap is dropped: queued, it would all arrive late
            elif isinstance(payload, str) and _BASE64(payload):
                self._openai(out, '{"type":"input_audio_buffer.append","audio":"' + payload + '"}')
            else:
                self.bad_media += 1  # not base64: never spliced into JSON, never forwarded
        elif event == "mark":
            mark = msg.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if isinstance(name, str):
                self._on_mark(out, name, now)
        elif event == "start":
            if self.started_at_start is None and isinstance(msg.get("start"), dict):
                self.started_at_start = now
                self._on_start(out, msg, now)
            else:
                self.bad_media += 1  # a repeated or malformed start changes nothing
        elif event == "stop":
            if self._phase == "handover":  # Twilio moved the call to the new stream
                self._end(out, EndReason.HANDED_OVER, deliberate=False)
            elif self._phase == "transferring":  # the redirect to staff took the call
                self._end(out, EndReason.TRANSFERRED, deliberate=True)
            else:
                self._end(out, EndReason.CALLER_HUNG_UP, deliberate=True)
        elif event in ("connected", "dtmf"):
            pass
        else:
            log.info(
                "unknown Twilio event ignored",
                extra={"stream_sid": self.stream_sid, "reason": str(event)[:40]},
            )
        return out

    def _on_start(self, out: list[Output], msg: dict[str, Any], now: float) -> None:
        start = msg.get("start") or {}
        self.stream_sid = str(msg.get("streamSid") or start.get("streamSid") or "")
        stream_call_sid = str(start.get("callSid") or "")
        if not self.bound or stream_call_sid != self.call_sid:
            # A token opens a stream for the call it was minted for, and nothing else.
            log.warning(
                "stream refused: start.callSid %s is not the token's call %s",
                stream_call_sid[:40] or "(none)",
                self.call_sid or "(none)",
                extra={**self._log_ctx(), "reason": EndReason.CALL_SID_MISMATCH},
            )
            self._end(out, EndReason.CALL_SID_MISMATCH, deliberate=False, code=1008)
            return
        raw = start.get("customParameters")
        self.params = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        self.kind = direction_of(self.params)
        self.voicemail = self.kind == "voicemail"
        self.started_at = now
        self._start_tools(self.s.tools)
        if self.params.get(RESUME_PARAMETER):
            self._awaiting_resume = True  # no greeting: the call is under way
            out.append(LoadResume(self.params[RESUME_PARAMETER]))
            return
        self._openai(out, self._session_update())
        self._openai(out, greeting_item(self.kind))
        self.greeting = Greeting(self.voicemail)
        self._ask_for_greeting(out)
        if self.voicemail:
            # If the machine never lets the message finish, do not hold the line forever.
            self._voicemail_deadline = now + self.s.goodbye_fallback_s + 40.0

    def _ask_for_greeting(self, out: list[Output]) -> None:
        """The greeting's user item is in the conversation; this asks for (another) answer."""
        self.greeting.asked()
        self._openai(out, {"type": "response.create"})

    def _on_mark(self, out: list[Output], name: str, now: float) -> None:
        purpose = self.playback.echoed(name, now)
        if purpose is not None and self._tool_mark(out, purpose):
            pass
        elif purpose == "voicemail_played":
            self._end(out, EndReason.VOICEMAIL_LEFT, deliberate=True)
        elif purpose == "goodbye_played":
            self._end(out, EndReason.TIME_LIMIT, deliberate=True)

    # -- OpenAI → ----------------------------------------------------------------------------
    def on_openai(self, event: dict[str, Any], now: float) -> list[Output]:
        out: list[Output] = []
        kind = event.get("type")
        if kind in TOOL_EVENTS:
            self._tool_events(out, event, now)
        if kind == "response.output_audio.delta":
            self._on_delta(out, event, now)
        elif kind == "input_audio_buffer.speech_started":
            self._on_speech_started(out, now)
        elif kind == "response.created":
            self._active_response = (event.get("response") or {}).get("id")
            self.greeting.on_created(str(self._active_response))
            self._tool_created(str(self._active_response))
        elif kind == "response.done":
            self._flush_marks(out, str((event.get("response") or {}).get("id") or ""))
            self._on_response_done(out, event, now)
            self._tool_response_done(out, event.get("response") or {}, now)
        elif kind == "response.output_audio.done":
            self._flush_marks(out, str(event.get("response_id") or ""))
        elif kind == "response.output_audio_transcript.delta":
            rid, delta = str(event.get("response_id") or ""), event.get("delta")
            if isinstance(delta, str) and rid not in self._transcript_line:
                self._said_so_far[rid] = self._said_so_far.get(rid, "") + delta
        elif kind == "response.output_audio_transcript.done":
            self._assistant_said(str(event.get("response_id") or ""), event.get("transcript"))
        elif kind == "conversation.item.input_audio_transcription.completed":
            text = str(event.get("transcript") or "")
            self.transcript.add("caller", text)
            self.history.caller(text)
        elif kind == "conversation.item.truncated":
            pass
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
        return out

    def _on_delta(self, out: list[Output], event: dict[str, Any], now: float) -> None:
        response_id = str(event.get("response_id") or "")
        delta = event.get("delta")
        if response_id in self._discarded or not isinstance(delta, str) or not self.stream_sid:
            return  # late audio of an interrupted response must never reach the caller
        item_id = str(event.get("item_id") or response_id)
        mark = self.playback.audio_sent(item_id, response_id, delta, now)
        sid = self.stream_sid
        out.append(
            ToTwilio(
                '{"event":"media","streamSid":"' + sid + '","media":{"payload":"' + delta + '"}}'
            )
        )
        for name in [mark] if mark else []:
            out.append(
                ToTwilio(
                    '{"event":"mark","streamSid":"' + sid + '","mark":{"name":"' + name + '"}}'
                )
            )

    def _flush_marks(self, out: list[Output], response_id: str) -> None:
        """The audio is complete: its last, short chunk gets its mark now."""
        for name in self.playback.flush(response_id):
            self._mark(out, name)

    def _mark(self, out: list[Output], name: str) -> None:
        """A Twilio mark: echoed once the audio sent before it has played."""
        self._twilio(out, {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    def _on_speech_started(self, out: list[Output], now: float) -> None:
        if self.voicemail or self._phase != "talking":
            return  # no barge-in on a voicemail or over the goodbye
        playing = self.playback.unplayed(now)
        if not playing and self._active_response is None:
            return
        self.barge_ins += 1
        truncations = []
        for item in list(self.playback.items.values()):
            heard = item.played_at(now)
            if heard < item.sent_ms - 1e-6:
                if item.item_id not in self._stale_items:  # a dead session's item: not there
                    truncations.append((item.item_id, round(max(0.0, min(heard, item.sent_ms)))))
                self._heard[item.response_id] = heard / item.sent_ms if item.sent_ms else 0.0
                self._mark_cut_off(item.response_id, f"interrupted at {heard / 1000:.1f} s")
            self._discarded.add(item.response_id)
        self._twilio(out, {"event": "clear", "streamSid": self.stream_sid})
        self.playback.clear()
        if self._active_response is not None:
            self._discarded.add(self._active_response)
            self._openai(out, {"type": "response.cancel"})
        for item_id, end_ms in truncations:
            self._openai(
                out,
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": end_ms,
                },
            )
        for item_id in list(self.playback.items):
            self.playback.forget(item_id)

    def _assistant_said(self, response_id: str, text: Any) -> None:
        """One transcript line per response; a cut-off one says so (it was not all heard)."""
        if not isinstance(text, str) or not text.strip() or response_id in self._transcript_line:
            return
        if response_id in self._discarded and response_id not in self._cut_off:
            return  # discarded before any of it was played: the caller heard none of it
        self._transcript_line[response_id] = len(self.transcript.lines)
        self._said_so_far.pop(response_id, None)
        self.transcript.add(self._speaker(response_id), text)
        self.history.assistant(response_id, text, self._heard.get(response_id, 1.0))

    def _speaker(self, response_id: str) -> str:
        how = self._cut_off.get(response_id)
        return f"assistant ({how})" if how else "assistant"

    def _mark_cut_off(self, response_id: str, how: str) -> None:
        """Label the response (and its line, if its transcript came before the cut)."""
        self._cut_off[response_id] = how
        line = self._transcript_line.get(response_id)
        if line is not None:
            lines = self.transcript.lines
            lines[line] = (self._speaker(response_id), lines[line][1])
            self.history.cut(response_id, lines[line][1], self._heard.get(response_id, 1.0))

    def _on_response_done(self, out: list[Output], event: dict[str, Any], now: float) -> None:
        response = event.get("response") or {}
        end = ResponseEnd.of(response)
        response_id = response.get("id")
        if response_id == self._active_response:
            self._active_response = None
        if end.status != "completed":
            log_unfinished(end, self._log_ctx())
        if response_id in self._cut_off and response_id not in self._transcript_line:
            # A cancelled response may end without a transcript event; its output has one.
            self._assistant_said(str(response_id), transcript_of(response))
        verdict = self.greeting.on_done(end, end.id in self._discarded)
        if verdict is Verdict.RETRY:
            log.warning(
                "asking again for the %s",
                "voicemail message" if self.voicemail else "greeting",
                extra={**self._log_ctx(), "attempt": self.greeting.attempts + 1},
            )
            self._ask_for_greeting(out)
        elif verdict is Verdict.GIVE_UP:
            failed = EndReason.VOICEMAIL_FAILED if self.voicemail else EndReason.GREETING_FAILED
            self._end(out, failed, deliberate=False)
        elif verdict is Verdict.SPOKEN and self.voicemail and self._phase == "talking":
            # Hang up only once Twilio says the whole message has played: hanging up on
            # OpenAI's response.done would cut off the audio still queued at Twilio.
            self._mark(out, self.playback.sentinel("voicemail_played"))
        elif self._phase == "goodbye_pending" and self._active_response is None:
            self._say_goodbye(out, now)
        elif self._phase == "goodbye" and response_id not in self._discarded:
            self._phase = "done"
            if end.status == "failed":
                self._end(out, EndReason.GOODBYE_FAILED, deliberate=False)  # apology, not silence
                return
            self._mark(out, self.playback.sentinel("goodbye_played"))

    def _log_ctx(self) -> dict[str, str]:
        return {"call_sid": self.call_sid, "stream_sid": self.stream_sid}

    # -- time -------------------------------------------------------------------------------
    def on_tick(self, now: float) -> list[Output]:
        """Called a few times per second: the time cap and the fallbacks."""
        out: list[Output] = []
        if self.ended is not None:
            return out
        self._tool_tick(out, now)
        if self._voicemail_deadline is not None and now >= self._voicemail_deadline:
            if self.greeting.spoken:
                self._end(out, EndReason.VOICEMAIL_TIMEOUT, deliberate=True)
            else:  # never said in full: no voicemail to report
                self._end(out, EndReason.VOICEMAIL_FAILED, deliberate=False)
        elif self._phase == "talking" and now - self.started_at >= self.s.time_limit_s:
            self._goodbye_deadline = now + self.s.goodbye_fallback_s
            if self._active_response is not None:
                self._phase = "goodbye_pending"
                self._discarded.add(self._active_response)
                self._heard[self._active_response] = self.playback.heard_fraction(
                    self._active_response, now
                )
                self._mark_cut_off(self._active_response, "cut off by the time limit")
                self._twilio(out, {"event": "clear", "streamSid": self.stream_sid})
                self.playback.clear()
                self._openai(out, {"type": "response.cancel"})
            else:
                self._say_goodbye(out, now)
        elif self._goodbye_deadline is not None and now >= self._goodbye_deadline:
            self._end(out, EndReason.TIME_LIMIT, deliberate=True)
        return out

    def _say_goodbye(self, out: list[Output], now: float) -> None:
        self._phase = "goodbye"
        self._openai(
            out,
            {
                "type": "response.create",
                "response": {
                    "conversation": "none",
                    **({"tool_choice": "none"} if self.tools is not None else {}),
                    "instructions": f'Say exactly "{prompts.TIME_LIMIT_SENTENCE}" '
                    "and nothing else.",
                },
            },
        )

    def transcript_text(self) -> str:
        return "\n".join(f"{who}: {text}" for who, text in self.transcript.lines)
