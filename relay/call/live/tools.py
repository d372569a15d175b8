"""The assistant's tools on GPT-Live: the voice model delegates to a Responses model, which
calls our functions; this part answers them (sans-I/O, owned by
:class:`relay.call.live.bridge.LiveBridge`).

1. A ``response.event`` whose nested event is ``response.output_item.done`` with a completed
   ``function_call`` item is one call; the :class:`~relay.call.tools.ToolBox` decides it, as on
   Realtime (the same tools, limits and outputs).
2. ``send_text`` / ``take_message`` need I/O: a :class:`RunTool` for the session, whose result
   comes back through :meth:`LiveToolFlow.on_result`.
3. Once no call is waiting for its I/O, every output goes back as ``response.item.create``
   (``function_call_output``) and then one ``response.create``: the service refuses a partial
   batch.
4. ``end_call`` / ``transfer_to_staff`` act once the closing line the output asks for has been
   heard (:class:`relay.call.live.closing.Closing`).
"""

from __future__ import annotations

from typing import Any

from common import prompts
from relay.call.outputs import Output, RunTool, Transcript, to_openai
from relay.call.phase import CallPhase, Phase
from relay.call.tools import Hangup, ToolBox, ToolOutcome, ToolSettings, Transfer
from relay.protocol import live
from relay.protocol.realtime import FunctionCall


class LiveToolFlow:
    def __init__(self, *, phase: Phase, transcript: Transcript):
        self.phase = phase
        self.transcript = transcript
        self.tools: ToolBox | None = None
        #: Results of transfers, for the call's record: ``{"to", "status"}``.
        self.transfers: list[dict[str, str]] = []
        self._seen: set[str] = set()
        self._waiting: set[str] = set()  # call ids whose action is running
        self._outputs: list[tuple[str, str]] = []  # (call id, output) not sent yet
        #: The accepted end_call / transfer whose closing line is to be heard.
        self.ending: ToolOutcome | None = None

    def start(self, settings: ToolSettings | None, caller: str, voicemail: bool) -> None:
        if settings is not None and not voicemail:
            self.tools = ToolBox(settings, caller=caller)

    def definitions(self) -> list[dict[str, Any]] | None:
        """The function tools, as the Responses delegation takes them (strict schemas)."""
        if self.tools is None:
            return None
        return [{**tool, "strict": True} for tool in self.tools.tools()]

    def on_response_event(self, out: list[Output], event: dict[str, Any], now: float) -> None:
        call = live.function_call_in(event)
        if call is None or self.tools is None or call.call_id in self._seen:
            return
        self._seen.add(call.call_id)
        done = self.tools.handle_call(FunctionCall(call.name, call.arguments, call.call_id), now)
        if done.pending:
            self._waiting.add(call.call_id)
            out.append(RunTool(done))
            return
        self._answer(out, done)

    def _answer(self, out: list[Output], done: ToolOutcome) -> None:
        self.transcript.add(*done.transcript_line())
        self._outputs.append((done.call.call_id, done.output))
        if isinstance(done.action, Hangup | Transfer) and done.outcome == "ok":
            self.ending = done
            self.phase.to(CallPhase.TOOL_ENDING)
        self._flush(out)

    def _flush(self, out: list[Output]) -> None:
        """Every output at once, then one ``response.create``, when nothing is pending."""
        if self._waiting or not self._outputs:
            return
        for call_id, output in self._outputs:
            out.append(to_openai(live.function_call_output(call_id, output)))
        self._outputs.clear()
        out.append(to_openai(live.response_create()))

    def ending_heard(self, out: list[Output]) -> bool:
        """The closing line of an accepted end_call / transfer was heard: True for a hang-up
        (the bridge ends the call); a transfer becomes a :class:`RunTool` (the redirect)."""
        ending, self.ending = self.ending, None
        if ending is None:
            return False
        if isinstance(ending.action, Hangup):
            return True
        self.phase.to(CallPhase.TRANSFERRING)  # Twilio's stop, next, is the move to staff
        out.append(RunTool(ending))
        return False

    def on_result(self, done: ToolOutcome, result: str, ended: bool) -> list[Output]:
        out: list[Output] = []
        if self.tools is None:
            return out
        if isinstance(done.action, Transfer):
            self.transfers.append({"to": self.tools.s.transfer_number, "status": result})
            self.transcript.add("tool", f"transfer to staff -> {result}")
            if result != "redirected" and not ended:
                # Still on the line with the assistant: it says so and offers a message.
                self.tools.transfer_failed()
                self.phase.to(CallPhase.TALKING)
                out.append(to_openai(live.instructions_append(prompts.TOOL_TRANSFER_FAILED_NOTE)))
            return out
        finished = self.tools.finish(done, result)
        self._waiting.discard(done.call.call_id)
        if ended:  # the call ended meanwhile: keep it for the record only
            self.transcript.add(*finished.transcript_line())
            return out
        self._answer(out, finished)
        return out

    def record(self) -> list[dict[str, Any]]:
        """``{"name", "arguments", "result"}`` per tool call, for the call summary."""
        return self.tools.record() if self.tools is not None else []
