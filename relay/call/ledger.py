"""One ledger of the assistant's responses, edited by barge-in, upstream loss, hand-over and the
time cap alike: which response is active, which were discarded or cut off, how much of each
the caller heard, and what each said so far.

It also writes the assistant's transcript lines: one per response, labelled when the caller
did not hear it all ("assistant (interrupted at 2.4 s)"), and the heard part into the
:class:`relay.call.replay.History` a new upstream is told.
"""

from __future__ import annotations

from typing import Any

from relay.call.outputs import Transcript
from relay.call.replay import History


class ResponseLedger:
    def __init__(self, transcript: Transcript, history: History):
        self.transcript = transcript
        self.history = history
        #: The response the model is generating now (``response.created`` to ``.done``).
        self.active: str | None = None
        #: Responses whose further audio must never reach the caller.
        self.discarded: set[str] = set()
        #: Responses cut off before the caller heard them whole → how they were cut.
        self.cut_off: dict[str, str] = {}
        #: Fraction of each cut response the caller heard (0-1).
        self.heard: dict[str, float] = {}
        #: Audio items of a dead upstream session (never truncated: that session is gone).
        self.stale_items: set[str] = set()
        self._said_so_far: dict[str, str] = {}  # response id → transcript deltas
        self._line: dict[str, int] = {}  # response id → its transcript line

    # -- lifecycle ----------------------------------------------------------------------------
    def created(self, response_id: str | None) -> None:
        self.active = response_id

    def done(self, response_id: Any) -> None:
        if response_id == self.active:
            self.active = None

    def discard(self, response_id: str) -> None:
        self.discarded.add(response_id)

    def take_active(self) -> str | None:
        """The active response, no longer active (its upstream is gone)."""
        rid, self.active = self.active, None
        return rid

    # -- what was said --------------------------------------------------------------------------
    def delta(self, response_id: str, text: Any) -> None:
        """A transcript delta: kept until the response's line is written."""
        if isinstance(text, str) and response_id not in self._line:
            self._said_so_far[response_id] = self._said_so_far.get(response_id, "") + text

    def said_so_far(self, response_id: str) -> str:
        return self._said_so_far.get(response_id, "")

    def has_line(self, response_id: Any) -> bool:
        return response_id in self._line

    def said(self, response_id: str, text: Any) -> None:
        """One transcript line per response; a cut-off one says so (it was not all heard)."""
        if not isinstance(text, str) or not text.strip() or response_id in self._line:
            return
        if response_id in self.discarded and response_id not in self.cut_off:
            return  # discarded before any of it was played: the caller heard none of it
        self._line[response_id] = len(self.transcript.lines)
        self._said_so_far.pop(response_id, None)
        self.transcript.add(self.speaker(response_id), text)
        self.history.assistant(response_id, text, self.heard.get(response_id, 1.0))

    def said_partly(self, response_id: str) -> None:
        """The response stopped mid-way (its upstream died): what it said so far is its line."""
        self.said(response_id, self.said_so_far(response_id))

    def speaker(self, response_id: str) -> str:
        how = self.cut_off.get(response_id)
        return f"assistant ({how})" if how else "assistant"

    def cut(
        self, response_id: str, how: str, heard: float | None = None, relabel: bool = True
    ) -> None:
        """The caller stopped hearing the response (``heard``: the fraction they heard).
        Labels it, and (``relabel``) its line if its transcript came before the cut."""
        if heard is not None:
            self.heard[response_id] = heard
        self.cut_off[response_id] = how
        line = self._line.get(response_id) if relabel else None
        if line is not None:
            lines = self.transcript.lines
            lines[line] = (self.speaker(response_id), lines[line][1])
            self.history.cut(response_id, lines[line][1], self.heard.get(response_id, 1.0))

    def reset_history(self, history: History) -> None:
        """A resumed call brings its own history."""
        self.history = history
