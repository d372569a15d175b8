"""relay.call.ticker: one greenlet ticks every live call; a failing call does not stop the clock."""

from __future__ import annotations

import logging

import gevent
import pytest

from relay.call.ticker import TICK_SECONDS, Ticker


class Call:
    def __init__(self, call_sid: str, fail: bool = False):
        self.call_sid = call_sid
        self.fail = fail
        self.ticks: list[float] = []

    def tick(self, now: float) -> None:
        self.ticks.append(now)
        if self.fail:
            raise RuntimeError("tick bug")


def test_every_call_is_ticked_from_one_greenlet_and_a_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticker = Ticker()
    good, bad = Call("CAgood"), Call("CAbad", fail=True)
    ticker.add(good)
    ticker.add(bad)
    first = ticker._greenlet
    with caplog.at_level(logging.ERROR, logger="relay.call.ticker"), gevent.Timeout(5):  # a ceiling
        while len(good.ticks) < 3:
            gevent.sleep(TICK_SECONDS / 4)
    assert ticker._greenlet is first  # one greenlet for both calls
    assert len(bad.ticks) >= 2  # its failure did not stop its own clock either
    assert good.ticks[:2] == bad.ticks[:2]  # ticked at the same moments
    failed = [r for r in caplog.records if r.getMessage() == "call tick failed"]
    assert failed and all(r.call_sid == "CAbad" for r in failed)


def test_the_greenlet_ends_with_the_last_call_and_add_starts_it_again() -> None:
    ticker = Ticker()
    call = Call("CA1")
    ticker.add(call)
    ticker.discard(call)
    first = ticker._greenlet
    assert first is not None
    first.join(timeout=5)
    assert first.dead
    ticked = len(call.ticks)
    gevent.sleep(TICK_SECONDS * 2)
    assert len(call.ticks) == ticked  # a discarded call is not ticked
    ticker.add(call)
    assert ticker._greenlet is not first and not ticker._greenlet.dead
    with gevent.Timeout(5):
        while len(call.ticks) == ticked:
            gevent.sleep(TICK_SECONDS / 4)
    ticker.discard(call)
