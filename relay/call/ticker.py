"""The process's call clock: one greenlet that ticks every live call.

A timer per call would wake the process once per call per tick, each time at a different
moment; one shared timer wakes it once per tick for all of them.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import gevent

log = logging.getLogger(__name__)

#: How often a call's bridge is asked about the clock (time cap, fallbacks).
TICK_SECONDS = 0.1


class Ticking(Protocol):
    @property
    def call_sid(self) -> str: ...

    def tick(self, now: float) -> None: ...


class Ticker:
    """Ticks every added call ``TICK_SECONDS`` apart, from one greenlet that runs while any
    call is live (``add`` starts it again after the last call left)."""

    def __init__(self) -> None:
        self.calls: set[Ticking] = set()
        self._greenlet: gevent.Greenlet | None = None

    def add(self, call: Ticking) -> None:
        self.calls.add(call)
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)

    def discard(self, call: Ticking) -> None:
        self.calls.discard(call)

    def _run(self) -> None:
        while self.calls:
            gevent.sleep(TICK_SECONDS)
            now = time.monotonic()
            for call in list(self.calls):
                try:
                    call.tick(now)
                except Exception:  # one call's fault must not stop every call's clock
                    log.exception("call tick failed", extra={"call_sid": call.call_sid})


#: The process's one ticker.
TICKER = Ticker()
