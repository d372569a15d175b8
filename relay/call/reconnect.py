"""When to try OpenAI Realtime again after its socket dropped mid-call.

A dropped upstream is retried after 200 ms, then 400 ms, 800 ms, ... at most
``UPSTREAM_RECONNECT_ATTEMPTS`` times, and never later than :data:`BUDGET_SECONDS` after the
drop: past that the caller has been in silence too long and the apology is kinder. Attempts
are counted per window, not per drop: a session that comes back and dies again within
:data:`STABLE_SECONDS` (a flapping upstream) uses up the same allowance, so a call cannot
reconnect forever.

Pure bookkeeping; the bridge turns a delay into a :class:`Reconnect` output and the gevent
driver sleeps and dials.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_DELAY_SECONDS = 0.2
BUDGET_SECONDS = 5.0
#: An upstream that stayed up this long earns a fresh allowance when it drops.
STABLE_SECONDS = 30.0
#: A gap longer than this gets a spoken "sorry, one moment" from the first response after it.
APOLOGY_GAP_SECONDS = 1.5


@dataclass(frozen=True)
class Reconnect:
    """Open a new upstream after ``delay_s``; give the attempt at most ``timeout_s``."""

    delay_s: float
    timeout_s: float


class Reconnects:
    def __init__(self, attempts: int):
        self.attempts = attempts
        self.used = 0
        self.opened_at: float | None = None
        self.dropped_at: float | None = None  # start of the current gap
        self._tries = 0  # attempts in the current gap (for the backoff)

    def opened(self, now: float) -> float | None:
        """An upstream is open; returns how long the gap lasted (None on the first open)."""
        gap = None if self.dropped_at is None else now - self.dropped_at
        self.opened_at, self.dropped_at, self._tries = now, None, 0
        return gap

    @property
    def in_gap(self) -> bool:
        return self.dropped_at is not None

    def next(self, now: float) -> Reconnect | None:
        """After a drop or a failed attempt: the next attempt, or None (give up)."""
        if self.dropped_at is None:
            if self.opened_at is not None and now - self.opened_at >= STABLE_SECONDS:
                self.used = 0
            self.dropped_at = now
        if self.used >= self.attempts:
            return None
        delay = FIRST_DELAY_SECONDS * (2**self._tries)
        remaining = self.dropped_at + BUDGET_SECONDS - (now + delay)
        if remaining <= 0.2:
            return None
        self.used += 1
        self._tries += 1
        return Reconnect(delay, remaining)
