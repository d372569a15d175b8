"""STAFF_HOURS: parsing and the open/closed decision, daylight saving included."""

from __future__ import annotations

import datetime as dt

import pytest

from common.config import ConfigError, load_config
from common.staff_hours import StaffHoursError, parse

UTC = dt.UTC


def test_weekday_window_in_its_own_zone() -> None:
    hours = parse("Mon-Fri 08:00-17:00 America/Los_Angeles")
    # Wednesday 2026-12-02: 08:00 PST is 16:00 UTC
    assert not hours.is_open(dt.datetime(2026, 12, 2, 15, 59, tzinfo=UTC))
    assert hours.is_open(dt.datetime(2026, 12, 2, 16, 0, tzinfo=UTC))
    assert not hours.is_open(dt.datetime(2026, 12, 3, 1, 0, tzinfo=UTC))  # 17:00 PST: closed
    assert not hours.is_open(dt.datetime(2026, 12, 5, 18, 0, tzinfo=UTC))  # Saturday
    # July: PDT, 08:00 is 15:00 UTC
    assert hours.is_open(dt.datetime(2026, 7, 1, 15, 0, tzinfo=UTC))


def test_lists_and_wrapping_ranges() -> None:
    assert parse("Mon,Wed,Sat 09:00-12:00 UTC").days == frozenset({0, 2, 5})
    assert parse("Fri-Mon 09:00-12:00 UTC").days == frozenset({4, 5, 6, 0})


@pytest.mark.parametrize(
    "text",
    [
        "Mon-Fri 08:00-17:00",
        "Mon-Fry 08:00-17:00 UTC",
        "Mon-Fri 17:00-08:00 UTC",
        "Mon-Fri 8-17 UTC",
        "Mon-Fri 08:00-17:00 Mars/Olympus",
    ],
)
def test_bad_hours_are_refused(text: str) -> None:
    with pytest.raises(StaffHoursError):
        parse(text)
    with pytest.raises(ConfigError, match="STAFF_HOURS"):
        load_config({"STAFF_HOURS": text})


def test_staff_settings_parse() -> None:
    cfg = load_config(
        {
            "STAFF_NOTIFY_TO": "+14155550100, +14155550101",
            "STAFF_CONVERSATION_SID": "CH" + "0" * 32,
            "STAFF_TRANSFER_NUMBER": "+14155550123",
        }
    )
    assert cfg.staff_notify_to == ("+14155550100", "+14155550101")
    assert cfg.staff_hours is None  # always open
    with pytest.raises(ConfigError, match="STAFF_CONVERSATION_SID"):
        load_config({"STAFF_CONVERSATION_SID": "IS123"})
