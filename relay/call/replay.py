"""What a new OpenAI Realtime session is told about the call so far, after a reconnect or a
handover to another relay process.

The conversation lives in the OpenAI session; when that socket dies, so does the model's
memory of the call. The relay keeps its own record (:class:`History`): what the caller said
(transcripts) and what the assistant said *as the caller heard it* (a reply cut by a barge-in
or the time cap keeps only the heard part), and replays it into the new session as
``conversation.item.create`` events (GA shapes: user ``input_text``, assistant
``output_text``), so the assistant carries on where it was instead of greeting again.

Pure bookkeeping, like :mod:`relay.call.playback`; the bridge decides when to replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]

#: Newest turns replayed: a ten-minute call has a few dozen; the cap bounds a pathological one.
MAX_TURNS = 80
#: Per-turn text cap (characters), for the same reason.
MAX_TEXT = 2000


@dataclass
class Turn:
    role: Role
    text: str
    #: The response a turn came from (assistant turns), so a later cut can shorten it.
    response_id: str = ""


@dataclass
class History:
    """The call's turns in order, as heard."""

    turns: list[Turn] = field(default_factory=list)
    _by_response: dict[str, Turn] = field(default_factory=dict)

    def caller(self, text: str) -> None:
        if text.strip():
            self.turns.append(Turn("user", text.strip()))

    def assistant(self, response_id: str, text: str, heard: float = 1.0) -> None:
        """The assistant's reply ``text``; ``heard`` is the fraction the caller heard."""
        text = text.strip()
        if not text or response_id in self._by_response:
            return
        turn = Turn("assistant", heard_part(text, heard), response_id)
        self._by_response[response_id] = turn
        if turn.text:
            self.turns.append(turn)

    def cut(self, response_id: str, full_text: str, heard: float) -> None:
        """A reply already recorded was cut off: keep only what was heard."""
        turn = self._by_response.get(response_id)
        if turn is None:
            return
        turn.text = heard_part(full_text, heard)
        if not turn.text and turn in self.turns:
            self.turns.remove(turn)

    def has(self, response_id: str) -> bool:
        return response_id in self._by_response

    def to_json(self) -> list[list[str]]:
        return [[t.role, t.text] for t in self.turns]

    @classmethod
    def from_json(cls, data: Any) -> History:
        history = cls()
        for entry in data if isinstance(data, list) else []:
            if isinstance(entry, list) and len(entry) == 2 and entry[0] in ("user", "assistant"):
                history.turns.append(Turn(entry[0], str(entry[1])))
        return history


def heard_part(text: str, heard: float) -> str:
    """The first ``heard`` fraction of ``text``, cut back to a word boundary, with an
    ellipsis when something was cut (so the model knows it was interrupted)."""
    if heard >= 0.999:
        return text
    n = int(len(text) * max(0.0, heard))
    if n <= 0:
        return ""
    part = text[:n]
    if n < len(text) and not text[n].isspace() and " " in part:
        part = part.rsplit(" ", 1)[0]
    part = part.rstrip(" ,;:")
    return part + "…" if part else ""


def items(history: History) -> list[dict[str, Any]]:
    """``conversation.item.create`` events for the newest :data:`MAX_TURNS` turns."""
    out = []
    for turn in history.turns[-MAX_TURNS:]:
        kind = "input_text" if turn.role == "user" else "output_text"
        out.append(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": turn.role,
                    "content": [{"type": kind, "text": turn.text[:MAX_TEXT]}],
                },
            }
        )
    return out
