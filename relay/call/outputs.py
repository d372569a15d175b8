"""What the call bridge returns: plain values for the session to carry out, no I/O; and how a
call's end is decided once (:class:`CallEnd`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.end_reasons import EndReason
from relay.call.handover import LoadResume
from relay.call.reconnect import Reconnect
from relay.call.tools import ToolOutcome
from relay.protocol.realtime import encode


@dataclass(frozen=True)
class ToTwilio:
    text: str


@dataclass(frozen=True)
class ToOpenAI:
    text: str


def to_openai(event: dict[str, Any]) -> ToOpenAI:
    return ToOpenAI(encode(event))


@dataclass(frozen=True)
class EndCall:
    """Close the stream. ``deliberate`` ends mean a plain hang-up; others get the apology."""

    reason: EndReason
    deliberate: bool
    close_code: int = 1000


@dataclass(frozen=True)
class RunTool:
    """Perform ``outcome.action`` off the frame loops (:mod:`relay.call.actions`), then give
    the bridge's ``on_tool_result`` what :meth:`relay.call.actions.ToolRunner.perform`
    returned."""

    outcome: ToolOutcome


Output = ToTwilio | ToOpenAI | EndCall | Reconnect | LoadResume | RunTool


@dataclass
class Transcript:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, who: str, text: str) -> None:
        if text.strip():
            self.lines.append((who, text.strip()))

    def text(self) -> str:
        return "\n".join(f"{who}: {text}" for who, text in self.lines)


class CallEnd:
    """How the call ended. The first end stands (a later one changes nothing, so a shutdown
    cannot relabel a hang-up); :meth:`end` is the only way anything sets :attr:`ended`."""

    __slots__ = ("ended",)

    def __init__(self) -> None:
        self.ended: EndCall | None = None

    def end(self, reason: EndReason, deliberate: bool = False, code: int = 1000) -> EndCall:
        if self.ended is None:
            self.ended = EndCall(reason, deliberate, code)
        return self.ended

    def emit(
        self, out: list[Output], reason: EndReason, deliberate: bool, code: int = 1000
    ) -> None:
        """End the call and tell the session, unless it had ended already."""
        if self.ended is None:
            out.append(self.end(reason, deliberate, code))
