"""Transcript lines from GPT-Live's transcript deltas.

``session.input_transcript.delta`` (the caller) and ``session.output_transcript.delta`` (the
assistant) carry fragments with no item ids and no "turn done": a side's fragments make one
line until the other side speaks or that side pauses for :data:`GAP_SECONDS`.
"""

from __future__ import annotations

from relay.call.outputs import Transcript

GAP_SECONDS = 0.8
CALLER, ASSISTANT = "caller", "assistant"


class Turns:
    def __init__(self, transcript: Transcript):
        self.transcript = transcript
        self.side: str | None = None  # whose line is open
        self.text = ""
        self.last_at = 0.0
        #: How the open assistant line was cut off ("interrupted at 2.4 s"), if it was.
        self.cut = ""

    def add(self, side: str, delta: str, now: float) -> tuple[str, str] | None:
        """A fragment; the line it closed (the other side's, or a pause's), if any."""
        closed = None
        if self.side != side or now - self.last_at > GAP_SECONDS:
            closed = self.close()
            self.side = side
        self.text += delta
        self.last_at = now
        return closed

    def mark_cut(self, how: str) -> None:
        if self.side == ASSISTANT:
            self.cut = how

    def close(self) -> tuple[str, str] | None:
        """End the open line and write it to the transcript; the line, or None."""
        if self.side is None:
            return None
        who = self.side if not self.cut else f"{self.side} ({self.cut})"
        line = (who, self.text.strip())
        self.side, self.text, self.cut = None, "", ""
        if not line[1]:
            return None
        self.transcript.add(*line)
        return line

    def idle(self, now: float) -> tuple[str, str] | None:
        """Close the open line once its side has been quiet for :data:`GAP_SECONDS`."""
        if self.side is not None and now - self.last_at > GAP_SECONDS:
            return self.close()
        return None
