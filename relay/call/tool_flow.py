"""The assistant's tools inside a live call: the bridge's side of :mod:`relay.call.tools`.

A mixin of :class:`relay.call.bridge.TwilioBridge`, sans-I/O like it (kept apart so the bridge
module stays about audio). The GA function-calling sequence, as the bridge runs it:

1. A function call arrives as ``response.function_call_arguments.done`` and again inside
   ``response.done``; :meth:`relay.call.tools.ToolBox.calls_in` keeps the first per
   ``call_id``. The :class:`~relay.call.tools.ToolBox` decides it.
2. A call that needs I/O (``send_text``, ``take_message``) becomes a :class:`RunTool` for the
   session, which performs it in a greenlet (:mod:`relay.tool_runner`) and hands the result to
   :meth:`ToolCalls.on_tool_result`. Every other call is answered at once.
3. The answer is a ``function_call_output`` item, then a ``response.create`` so the model
   speaks about it, but never while a response is active (the server refuses that with
   ``conversation_already_has_active_response``): it waits for ``response.done``.
4. ``end_call`` and ``transfer_to_staff`` end the call only once the sentence the output asks
   for has *played*: after that response's ``response.done`` a sentinel ``mark`` goes to
   Twilio, and its echo means the caller heard every byte before it. Meanwhile caller audio
   is not forwarded (phase ``tool_ending``), so a cough cannot cut the goodbye off. Then a
   hang-up ends the stream (``assistant_hung_up``: ``/twilio/voice/after`` answers
   ``<Hangup/>``) and a transfer becomes a :class:`RunTool` that redirects the call; Twilio
   then stops the stream (``transferred``). A redirect that fails gives the call back to the
   assistant with a system note. ``GOODBYE_FALLBACK_SECONDS`` bounds the wait for the echo.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from common.end_reasons import EndReason
from relay.call.greeting import session_update
from relay.call.notify import callee_of
from relay.call.outputs import RunTool
from relay.call.tools import (
    Hangup,
    ToolBox,
    ToolOutcome,
    ToolSettings,
    Transfer,
    function_call_output,
    response_create,
)

if TYPE_CHECKING:
    from relay.call.outputs import BridgeSettings, Output, Transcript
    from relay.call.playback import PlaybackTracker

log = logging.getLogger("relay.call.bridge")

#: Sentinel mark purposes: the goodbye, or the "connecting you" line, has played.
HANGUP_PLAYED = "tool_goodbye_played"
TRANSFER_PLAYED = "tool_transfer_played"
TOOL_EVENTS = ("response.function_call_arguments.done", "response.done")


class ToolCalls:
    # The bridge's state this mixin reads and writes (see TwilioBridge.__init__).
    s: BridgeSettings
    params: dict[str, str]
    voicemail: bool
    stream_sid: str
    ended: object | None
    transcript: Transcript
    playback: PlaybackTracker
    _active_response: str | None
    _discarded: set[str]
    _phase: str

    # Provided by TwilioBridge.
    def _openai(self, out: list[Output], obj: dict | str) -> None: ...
    def _twilio(self, out: list[Output], obj: dict[str, Any]) -> None: ...
    def _end(
        self, out: list[Output], reason: EndReason, deliberate: bool, code: int = 1000
    ) -> None: ...
    def _log_ctx(self) -> dict[str, str]: ...

    def _init_tools(self) -> None:
        self.tools: ToolBox | None = None
        #: Results of transfers, for the call's record: ``{"to", "status"}``.
        self.transfers: list[dict[str, str]] = []
        self._reply_due = False  # an output went in: the model must answer it
        self._reply_asked = False  # response.create sent, its response.created not yet seen
        self._ending: ToolOutcome | None = None  # the end_call / transfer under way
        self._ending_asked = False  # the next response.created speaks the ending line
        self._ending_response: str | None = None
        self._ending_deadline: float | None = None

    def _start_tools(self, settings: ToolSettings | None) -> None:
        """On ``start``: live calls get the tools, voicemails none (nobody to act for)."""
        if settings is not None and not self.voicemail:
            self.tools = ToolBox(settings, caller=callee_of(self.params))

    def _session_update(self) -> dict[str, Any]:
        tools = self.tools.tools() if self.tools is not None else None
        return session_update(self.s, self.voicemail, tools)

    # -- OpenAI events ----------------------------------------------------------------------
    def _tool_events(self, out: list[Output], event: dict[str, Any], now: float) -> None:
        """Before the bridge's own handling of the two events that carry function calls."""
        if self.tools is None:
            return
        for call in self.tools.calls_in(event):
            done = self.tools.handle_call(call, now)
            if done.pending:
                out.append(RunTool(done))  # answered once the text is sent / message kept
            else:
                self._answer(out, done, now)

    def _tool_created(self, response_id: str) -> None:
        self._reply_asked = False
        if self._ending_asked:
            self._ending_asked = False
            self._ending_response = response_id

    def _tool_response_done(self, out: list[Output], response: dict[str, Any], now: float) -> None:
        """After the bridge's own ``response.done`` handling (the response is no longer
        active): the ending line's end, and a reply that was waiting for it."""
        rid = response.get("id")
        if self._ending is not None and rid is not None and rid == self._ending_response:
            self._ending_response = None
            purpose = HANGUP_PLAYED if isinstance(self._ending.action, Hangup) else TRANSFER_PLAYED
            if response.get("status") == "failed":
                self._ending_played(out, purpose)  # nothing will play: act now
            else:
                mark = self.playback.sentinel(purpose)
                self._twilio(
                    out, {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": mark}}
                )
        self._reply(out)

    def _answer(self, out: list[Output], done: ToolOutcome, now: float) -> None:
        self.transcript.add(*done.transcript_line())
        self._openai(out, function_call_output(done.call.call_id, done.output))
        self._reply_due = True
        if isinstance(done.action, Hangup | Transfer) and done.outcome == "ok":
            self._ending = done
            self._ending_deadline = now + self.s.goodbye_fallback_s
            self._phase = "tool_ending"
        self._reply(out)

    def _reply(self, out: list[Output]) -> None:
        if not self._reply_due or self._active_response is not None or self._reply_asked:
            return
        self._reply_due = False
        self._reply_asked = True
        if self._ending is not None and self._ending_response is None:
            self._ending_asked = True
        self._openai(out, response_create())

    # -- the ending line played ---------------------------------------------------------------
    def _tool_mark(self, out: list[Output], purpose: str) -> bool:
        """A sentinel echo; True if it was one of ours."""
        if purpose not in (HANGUP_PLAYED, TRANSFER_PLAYED):
            return False
        self._ending_played(out, purpose)
        return True

    def _ending_played(self, out: list[Output], purpose: str) -> None:
        ending, self._ending_deadline = self._ending, None
        if ending is None or self.ended is not None:
            return
        if purpose == HANGUP_PLAYED:
            self._end(out, EndReason.ASSISTANT_HUNG_UP, deliberate=True)
        elif self._phase == "tool_ending":
            self._phase = "transferring"  # Twilio's stop, next, is the move to staff
            out.append(RunTool(ending))

    def _tool_tick(self, out: list[Output], now: float) -> None:
        """The echo never came (a lost mark, a dropped upstream): act anyway."""
        if self._ending_deadline is not None and now >= self._ending_deadline:
            assert self._ending is not None
            log.warning(
                "the %s line did not play in time; acting anyway",
                self._ending.call.name,
                extra={**self._log_ctx(), "reason": "tool_fallback"},
            )
            purpose = HANGUP_PLAYED if isinstance(self._ending.action, Hangup) else TRANSFER_PLAYED
            self._ending_played(out, purpose)

    # -- results of actions the session performed --------------------------------------------
    def on_tool_result(self, done: ToolOutcome, result: str, now: float) -> list[Output]:
        out: list[Output] = []
        if self.tools is None:
            return out
        if isinstance(done.action, Transfer):
            self.transfers.append({"to": self.tools.s.transfer_number, "status": result})
            self.transcript.add("tool", f"transfer to staff -> {result}")
            if result != "redirected" and self.ended is None:
                # Still on the line with the assistant: it says so and offers a message.
                self._ending = None
                self._phase = "talking"
                for event in self.tools.transfer_failed():
                    if event.get("type") == "response.create":
                        self._reply_due = True
                    else:
                        self._openai(out, event)
                self._reply(out)
            return out
        finished = self.tools.finish(done, result)
        if self.ended is None:
            self._answer(out, finished, now)
        else:  # the call ended meanwhile: keep it for the record only
            self.transcript.add(*finished.transcript_line())
        return out

    def tool_calls_record(self) -> list[dict[str, Any]]:
        """``{"name", "arguments", "result"}`` per tool call, for the call summary."""
        if self.tools is None:
            return []
        return [
            {"name": r.call.name, "arguments": dict(r.args), "result": r.outcome}
            for r in self.tools.records
        ]
