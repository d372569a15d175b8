"""The call's link to OpenAI: whether an upstream is open, what waits for one, and the
bookkeeping of reconnects after a drop (:class:`relay.call.reconnect.Reconnects`)."""

from __future__ import annotations

from relay.call.outputs import Output, ToOpenAI
from relay.call.reconnect import Reconnect, Reconnects


class UpstreamLink:
    def __init__(self, reconnect_attempts: int):
        self.open = False
        #: Messages for OpenAI made while no upstream was open, in order.
        self.pending: list[str] = []
        self.reconnects = Reconnects(reconnect_attempts)
        self.gaps: list[float] = []  # seconds without an upstream, per reconnect or resume
        self.reconnected = 0  # upstreams reopened after a drop
        self.drops = 0  # upstreams lost mid-call
        #: A resumed stream, until its saved state is loaded.
        self.awaiting_resume = False

    @property
    def in_gap(self) -> bool:
        """No upstream to talk to (a reconnect, or a resumed call still loading)."""
        return self.reconnects.in_gap or self.awaiting_resume

    def hold(self, out: list[Output]) -> None:
        """While no upstream is open, messages for OpenAI wait (the rest of ``out`` goes)."""
        if self.open:
            return
        kept = []
        for o in out:
            if type(o) is ToOpenAI:
                self.pending.append(o.text)
            else:
                kept.append(o)
        out[:] = kept

    def opened(self, now: float) -> float | None:
        """An upstream is open; the gap it ends when it replaces a dropped one, else None."""
        reopened = self.reconnects.opened_at is not None
        gap = self.reconnects.opened(now)
        self.open = True
        return gap if reopened else None

    def flush(self) -> list[Output]:
        out: list[Output] = [ToOpenAI(t) for t in self.pending]
        self.pending.clear()
        return out

    def dropped(self) -> bool:
        """The upstream died or an attempt failed; True when it was open (a drop)."""
        if not self.open:
            return False
        self.open = False
        self.drops += 1
        return True

    def next_attempt(self, now: float) -> Reconnect | None:
        return self.reconnects.next(now)
