"""The assistant's tools inside a live call: takes the tool events of the Realtime session and
returns what to send where (sans-I/O, like :class:`relay.call.bridge.TwilioBridge`, which owns
one :class:`ToolFlow` per call).

The GA function-calling sequence:

1. A function call arrives as ``response.function_call_arguments.done`` and again inside
   ``response.done``; :meth:`relay.call.tools.ToolBox.calls_in` keeps the first per
   ``call_id``. The :class:`~relay.call.tools.ToolBox` decides it.
2. A call that needs I/O (``send_text``, ``take_message``) becomes a :class:`RunTool` for the
   session, which performs it in a greenlet (:mod:`relay.call.actions`) and hands the result
   to :meth:`ToolFlow.on_result`. Every other call is answered at once.
3. The answer is a ``function_call_output`` item, then a ``response.create`` so the model
   speaks about it, but never while a response is active (the server refuses that with
   ``conversation_already_has_active_response``): it waits for ``response.done``.
4. ``end_call`` and ``transfer_to_staff`` end the call only once the sentence the output asks
   for has *played*: after that response's ``response.done`` a sentinel ``mark`` goes to
   Twilio, and its echo means the caller heard every byte before it. Meanwhile caller audio
   is not forwarded (phase ``TOOL_ENDING``), so a cough cannot cut the goodbye off. Then a
   hang-up ends the stream (``assistant_hung_up``: ``/twilio/voice/after`` answers
   ``<Hangup/>``) and a transfer becomes a :class:`RunTool` that redirects the call; Twilio
   then stops the stream (``transferred``). A redirect that fails gives the call back to the
   assistant with a system note. ``GOODBYE_FALLBACK_SECONDS`` bounds the wait for the echo.
"""

from __future__ import annotations

import logging
from typing import Any

from common.end_reasons import EndReason
from relay.call.ledger import ResponseLedger
from relay.call.outputs import CallEnd, Output, RunTool, ToTwilio, Transcript, to_openai
from relay.call.phase import CallPhase, Phase
from relay.call.playback import PlaybackTracker
from relay.call.tools import Hangup, ToolBox, ToolOutcome, ToolSettings, Transfer
from relay.protocol import realtime
from relay.protocol.twilio_media import StreamWriter

log = logging.getLogger(__name__)

#: Sentinel mark purposes: the goodbye, or the "connecting you" line, has played.
HANGUP_PLAYED = "tool_goodbye_played"
TRANSFER_PLAYED = "tool_transfer_played"
#: The server events that may carry function calls.
TOOL_EVENTS = ("response.function_call_arguments.done", "response.done")


class ToolFlow:
    """One call's tool calls, from the model's function call to its effect. Its outputs to
    OpenAI are :class:`ToOpenAI` values the bridge sends (or holds while no upstream is open).
    """

    def __init__(
        self,
        *,
        goodbye_fallback_s: float,
        ledger: ResponseLedger,
        phase: Phase,
        playback: PlaybackTracker,
        stream: StreamWriter,
        transcript: Transcript,
        ending: CallEnd,
    ):
        self.goodbye_fallback_s = goodbye_fallback_s
        self.ledger = ledger
        self.phase = phase
        self.playback = playback
        self.stream = stream
        self.transcript = transcript
        self.call_end = ending
        self.tools: ToolBox | None = None
        #: Results of transfers, for the call's record: ``{"to", "status"}``.
        self.transfers: list[dict[str, str]] = []
        self._reply_due = False  # an output went in: the model must answer it
        self._reply_asked = False  # response.create sent, its response.created not yet seen
        self._ending: ToolOutcome | None = None  # the end_call / transfer under way
        self._ending_asked = False  # the next response.created speaks the ending line
        self._ending_response: str | None = None
        self._ending_deadline: float | None = None

    def start(self, settings: ToolSettings | None, caller: str, voicemail: bool) -> None:
        """On ``start``: live calls get the tools, voicemails none (nobody to act for)."""
        if settings is not None and not voicemail:
            self.tools = ToolBox(settings, caller=caller)

    def definitions(self) -> list[dict[str, Any]] | None:
        return self.tools.tools() if self.tools is not None else None

    # -- OpenAI events ------------------------------------------------------------------------
    def on_event(self, out: list[Output], event: dict[str, Any], now: float) -> None:
        """Before the bridge's own handling of the two events that carry function calls."""
        if self.tools is None:
            return
        for call in self.tools.calls_in(event):
            done = self.tools.handle_call(call, now)
            if done.pending:
                out.append(RunTool(done))  # answered once the text is sent / message kept
            else:
                self._answer(out, done, now)

    def on_created(self, response_id: str) -> None:
        self._reply_asked = False
        if self._ending_asked:
            self._ending_asked = False
            self._ending_response = response_id

    def on_response_done(self, out: list[Output], response: dict[str, Any]) -> None:
        """After the bridge's own ``response.done`` handling (the response is no longer
        active): the ending line's end, and a reply that was waiting for it."""
        rid = response.get("id")
        if self._ending is not None and rid is not None and rid == self._ending_response:
            self._ending_response = None
            purpose = HANGUP_PLAYED if isinstance(self._ending.action, Hangup) else TRANSFER_PLAYED
            if response.get("status") == "failed":
                self._ending_played(out, purpose)  # nothing will play: act now
            else:
                out.append(ToTwilio(self.stream.mark(self.playback.sentinel(purpose))))
        self._reply(out)

    def _answer(self, out: list[Output], done: ToolOutcome, now: float) -> None:
        self.transcript.add(*done.transcript_line())
        out.append(to_openai(realtime.function_call_output(done.call.call_id, done.output)))
        self._reply_due = True
        if isinstance(done.action, Hangup | Transfer) and done.outcome == "ok":
            self._ending = done
            self._ending_deadline = now + self.goodbye_fallback_s
            self.phase.to(CallPhase.TOOL_ENDING)
        self._reply(out)

    def _reply(self, out: list[Output]) -> None:
        if not self._reply_due or self.ledger.active is not None or self._reply_asked:
            return
        self._reply_due = False
        self._reply_asked = True
        if self._ending is not None and self._ending_response is None:
            self._ending_asked = True
        out.append(to_openai(realtime.response_create()))

    # -- the ending line played -----------------------------------------------------------------
    def on_mark(self, out: list[Output], purpose: str) -> bool:
        """A sentinel echo; True if it was one of ours."""
        if purpose not in (HANGUP_PLAYED, TRANSFER_PLAYED):
            return False
        self._ending_played(out, purpose)
        return True

    def _ending_played(self, out: list[Output], purpose: str) -> None:
        ending, self._ending_deadline = self._ending, None
        if ending is None or self.call_end.ended is not None:
            return
        if purpose == HANGUP_PLAYED:
            self.call_end.emit(out, EndReason.ASSISTANT_HUNG_UP, deliberate=True)
        elif self.phase.is_(CallPhase.TOOL_ENDING):
            self.phase.to(CallPhase.TRANSFERRING)  # Twilio's stop, next, is the move to staff
            out.append(RunTool(ending))

    def on_tick(self, out: list[Output], now: float, log_ctx: dict[str, str]) -> None:
        """The echo never came (a lost mark, a dropped upstream): act anyway."""
        if self._ending_deadline is not None and now >= self._ending_deadline:
            assert self._ending is not None
            log.warning(
                "the %s line did not play in time; acting anyway",
                self._ending.call.name,
                extra={**log_ctx, "reason": "tool_fallback"},
            )
            purpose = HANGUP_PLAYED if isinstance(self._ending.action, Hangup) else TRANSFER_PLAYED
            self._ending_played(out, purpose)

    # -- results of actions the session performed ------------------------------------------------
    def on_result(self, done: ToolOutcome, result: str, now: float) -> list[Output]:
        out: list[Output] = []
        if self.tools is None:
            return out
        if isinstance(done.action, Transfer):
            self.transfers.append({"to": self.tools.s.transfer_number, "status": result})
            self.transcript.add("tool", f"transfer to staff -> {result}")
            if result != "redirected" and self.call_end.ended is None:
                # Still on the line with the assistant: it says so and offers a message.
                self._ending = None
                self.phase.to(CallPhase.TALKING)
                for event in self.tools.transfer_failed():
                    if event.get("type") == "response.create":
                        self._reply_due = True
                    else:
                        out.append(to_openai(event))
                self._reply(out)
            return out
        finished = self.tools.finish(done, result)
        if self.call_end.ended is None:
            self._answer(out, finished, now)
        else:  # the call ended meanwhile: keep it for the record only
            self.transcript.add(*finished.transcript_line())
        return out

    def record(self) -> list[dict[str, Any]]:
        """``{"name", "arguments", "result"}`` per tool call, for the call summary."""
        return self.tools.record() if self.tools is not None else []
