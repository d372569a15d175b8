"""What the voice assistant may do during a call: decisions on its function calls.

Pure, in the style of :mod:`relay.call.bridge`: feed a :class:`ToolBox` the function calls
OpenAI reports and the time; it validates the arguments (:mod:`relay.call.tool_specs`), decides
what should happen and returns the ``function_call_output`` text for the model plus an
:data:`Action` for the call session to perform (hang up after a goodbye, transfer, send a
text, keep a message). It never raises on what the model sends: a bad call gets an output
saying exactly what was wrong, so the model can correct itself.

A function call arrives twice: as ``response.function_call_arguments.done`` and again as a
``function_call`` item in ``response.done``; :meth:`ToolBox.calls_in` reads both and keeps
the first per ``call_id``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from common import prompts
from common.phone_numbers import normalize_us_number, refusal
from relay.call.tool_specs import (
    END_CALL,
    LIMITS,
    SEND_TEXT,
    TOOL_NAMES,
    TRANSFER,
    BadArguments,
    parse_arguments,
    tool_definitions,
)
from relay.metrics import TOOL_CALLS
from relay.protocol.realtime import FunctionCall as ToolCall
from relay.protocol.realtime import function_calls_in, message, response_create

if TYPE_CHECKING:
    from common.config import Config
    from common.staff_hours import StaffHours

#: Every ``outcome`` label of ``relay_tool_calls_total``.
OUTCOMES = (
    "ok",  # end_call / transfer accepted
    "staff_away",  # transfer outside STAFF_HOURS
    "invalid",  # bad arguments
    "rate_limited",  # send_text too soon or too often
    "refused",  # a number we may not text
    "unavailable",  # nothing to do it with (caller unknown, call already ending)
    "unknown_tool",
    "sent",  # send_text, after Twilio accepted it
    "stored",  # take_message, after it was kept
    "failed",  # the action's I/O failed
)

TEXT_INTERVAL_SECONDS = 30.0
#: A caller cannot turn the line into an SMS pump: a handful per call is plenty.
MAX_TEXTS_PER_CALL = 3


# -- actions: what the call session does after a tool call ------------------------------------
@dataclass(frozen=True)
class Nothing:
    """No side effect (refused, invalid, or only words for the model)."""


@dataclass(frozen=True)
class Hangup:
    """End the call once the goodbye the output asks for has played."""


@dataclass(frozen=True)
class Transfer:
    """Redirect the call to staff once the handover sentence has played."""

    reason: str


@dataclass(frozen=True)
class SendText:
    to: str
    body: str


@dataclass(frozen=True)
class TakeMessage:
    name: str
    callback_number: str
    message: str


Action = Nothing | Hangup | Transfer | SendText | TakeMessage


@dataclass(frozen=True)
class ToolOutcome:
    """One tool call decided. ``pending``: the session must perform ``action`` and pass its
    result to :meth:`ToolBox.finish`, whose outcome carries the output to send."""

    call: ToolCall
    output: str
    action: Action
    outcome: str
    args: dict[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return isinstance(self.action, SendText | TakeMessage) and self.outcome == "ok"

    def transcript_line(self) -> tuple[str, str]:
        """For the call's transcript (``Transcript.add(*line)``)."""
        shown = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return ("tool", f"{self.call.name}({shown}) -> {self.outcome}")


@dataclass(frozen=True)
class ToolSettings:
    transfer_number: str = ""
    staff_hours: StaffHours | None = None
    bot_number: str = ""

    @classmethod
    def from_config(cls, cfg: Config) -> ToolSettings:
        return cls(cfg.staff_transfer_number, cfg.staff_hours, cfg.bot_projected_address)


# -- the per-call tool box ------------------------------------------------------------------
class ToolBox:
    """One call's tools. Not thread-safe; the bridge drives it from one greenlet."""

    def __init__(self, settings: ToolSettings, caller: str = ""):
        self.s = settings
        self.caller = caller  # E.164 of the other party (``common.stream_twiml.other_party``)
        self.records: list[ToolOutcome] = []
        self.ending = False  # a hang-up or transfer is under way: nothing more to do
        self._seen: set[str] = set()
        self._texts: list[float] = []  # monotonic times of accepted texts

    def tools(self) -> list[dict[str, Any]]:
        return tool_definitions(bool(self.s.transfer_number), self.caller)

    def calls_in(self, event: dict[str, Any]) -> list[ToolCall]:
        """New function calls in ``event``; one already seen (by ``call_id``) is dropped."""
        fresh = []
        for call in function_calls_in(event):
            if call.call_id not in self._seen:
                self._seen.add(call.call_id)
                fresh.append(call)
        return fresh

    def handle(
        self,
        name: str,
        arguments: str,
        call_id: str,
        now: float,
        wall: dt.datetime | None = None,
    ) -> ToolOutcome:
        """Decide one call. ``now`` is monotonic seconds (rate limits), ``wall`` the aware
        time for ``STAFF_HOURS`` (default: now)."""
        call = ToolCall(name, arguments, call_id)
        if name not in LIMITS or (name == TRANSFER and not self.s.transfer_number):
            return self._record(
                call, f"There is no tool named {name[:40]!r}.", Nothing(), "unknown_tool", {}
            )
        try:
            args = parse_arguments(name, arguments)
        except BadArguments as exc:
            text = f"Not done: {exc}. Call {name} again with correct arguments."
            return self._record(call, text, Nothing(), "invalid", {})
        if self.ending:
            text = "Not done: the call is already ending."
            return self._record(call, text, Nothing(), "unavailable", args)
        if name == END_CALL:
            self.ending = True
            return self._record(call, prompts.TOOL_END_CALL_OUTPUT, Hangup(), "ok", args)
        if name == TRANSFER:
            return self._transfer(call, args, wall or dt.datetime.now(dt.UTC))
        if name == SEND_TEXT:
            return self._send_text(call, args, now)
        return self._take_message(call, args)

    def handle_call(
        self, call: ToolCall, now: float, wall: dt.datetime | None = None
    ) -> ToolOutcome:
        """:meth:`handle` for a call from :meth:`calls_in` (keeps its ``response_id``)."""
        done = self.handle(call.name, call.arguments, call.call_id, now, wall)
        kept = replace(done, call=call)
        self._replace(done, kept)
        return kept

    def _transfer(self, call: ToolCall, args: dict[str, str], wall: dt.datetime) -> ToolOutcome:
        hours = self.s.staff_hours
        if hours is not None and not hours.is_open(wall):
            text = prompts.TOOL_STAFF_AWAY_OUTPUT.format(hours=hours.describe())
            return self._record(call, text, Nothing(), "staff_away", args)
        self.ending = True
        return self._record(
            call, prompts.TOOL_TRANSFER_OUTPUT, Transfer(args["reason"]), "ok", args
        )

    def _send_text(self, call: ToolCall, args: dict[str, str], now: float) -> ToolOutcome:
        to = normalize_us_number(self.caller) if self.caller else None
        if to is None:
            text = "Not sent: the caller's number is unknown, so no text can be sent."
            return self._record(call, text, Nothing(), "unavailable", args)
        if refusal(to, self.s.bot_number):
            text = "Not sent: texts cannot be sent to the number this call is from."
            return self._record(call, text, Nothing(), "refused", args)
        if len(self._texts) >= MAX_TEXTS_PER_CALL:
            text = f"Not sent: at most {MAX_TEXTS_PER_CALL} texts can be sent in one call."
            return self._record(call, text, Nothing(), "rate_limited", args)
        if self._texts and now - self._texts[-1] < TEXT_INTERVAL_SECONDS:
            wait = TEXT_INTERVAL_SECONDS - (now - self._texts[-1])
            text = (
                "Not sent: only one text every "
                f"{TEXT_INTERVAL_SECONDS:.0f} seconds; try again in {wait:.0f} seconds."
            )
            return self._record(call, text, Nothing(), "rate_limited", args)
        self._texts.append(now)  # counted when asked for: a failed send still waited
        action = SendText(to=to, body=prompts.with_identity(args["message"]))
        return self._record(call, "", action, "ok", args, count=False)

    def _take_message(self, call: ToolCall, args: dict[str, str]) -> ToolOutcome:
        number = normalize_us_number(args["callback_number"])
        if number is None:
            text = (
                f"Not taken: {args['callback_number']!r} is not a valid US or Canadian phone "
                "number. Ask the caller to say it again."
            )
            return self._record(call, text, Nothing(), "invalid", args)
        why = refusal(number, self.s.bot_number)
        if why:
            text = f"Not taken: the callback number is not allowed ({why}). Ask for another."
            return self._record(call, text, Nothing(), "refused", args)
        args = {**args, "callback_number": number}
        action = TakeMessage(args["name"], number, args["message"])
        return self._record(call, "", action, "ok", args, count=False)

    def finish(self, outcome: ToolOutcome, result: str) -> ToolOutcome:
        """The output once a pending action ran. ``result`` is what :mod:`relay.call.actions`
        returned: ``sent``/``refused``/``failed`` for a text, ``stored``/``failed`` for a
        message."""
        if isinstance(outcome.action, SendText):
            if result == "sent":
                text, label = "Sent. Tell the caller the text is on its way.", "sent"
            elif result == "refused":
                text, label = "Not sent: this number cannot receive texts from us.", "refused"
            else:
                text, label = "Not sent: texting failed. Apologise; do not retry.", "failed"
        elif isinstance(outcome.action, TakeMessage):
            if result == "stored":
                text, label = prompts.TOOL_MESSAGE_TAKEN_OUTPUT, "stored"
            else:
                text, label = (
                    "Not taken: the message could not be saved. Apologise and suggest calling "
                    "back later or texting this number.",
                    "failed",
                )
        else:
            return outcome
        done = replace(outcome, output=text, outcome=label)
        self._replace(outcome, done)
        TOOL_CALLS.labels(outcome.call.name, label).inc()
        return done

    def transfer_failed(self) -> list[dict[str, Any]]:
        """The events to send when the redirect did not happen: the call is still with the
        assistant, which must say so and offer a message instead."""
        self.ending = False
        return [message("system", prompts.TOOL_TRANSFER_FAILED_NOTE), response_create()]

    def _record(
        self,
        call: ToolCall,
        output: str,
        action: Action,
        outcome: str,
        args: dict[str, str],
        *,
        count: bool = True,
    ) -> ToolOutcome:
        done = ToolOutcome(call, output, action, outcome, args)
        self.records.append(done)
        if count:
            tool = call.name if call.name in TOOL_NAMES else "unknown"
            TOOL_CALLS.labels(tool, outcome).inc()
        return done

    def record(self) -> list[dict[str, Any]]:
        """``{"name", "arguments", "result"}`` per tool call, for the call's record."""
        return [
            {"name": r.call.name, "arguments": dict(r.args), "result": r.outcome}
            for r in self.records
        ]

    def _replace(self, old: ToolOutcome, new: ToolOutcome) -> None:
        for i, rec in enumerate(self.records):
            if rec is old:
                self.records[i] = new
                return
        self.records.append(new)
