"""The phone-number policy: reading a written US number, and which numbers the bot may dial,
text or add (pure rules, no network)."""

from __future__ import annotations

import pytest

from common.phone_numbers import normalize_us_number, refusal

BOT = "+14082605145"


@pytest.mark.parametrize(
    "number",
    ["+14155551000", "+12125551212", "+16045550123", "+14165550100", "+18005550100"],
)
def test_ordinary_us_canadian_and_toll_free_numbers_pass(number: str) -> None:
    assert refusal(number, BOT) is None


@pytest.mark.parametrize(
    "number, reason",
    [
        ("+19005550199", "premium-rate"),
        ("+14159761234", "premium-rate"),  # 976 exchanges are pay-per-call
        ("+18765550100", "only US and Canadian"),  # Jamaica
        ("+12423571234", "only US and Canadian"),  # Bahamas
        ("+18095550100", "only US and Canadian"),  # Dominican Republic
        ("+17875550100", "only US and Canadian"),  # Puerto Rico: billed apart from the US
        ("+14152111234", "service codes"),  # N11 exchange
        ("+19115550100", "service codes"),  # N11 area code
        ("+15005550006", "that kind of number"),  # 500: personal communication services
        ("+442079460958", "only US and Canadian"),
        (BOT, "my own number"),
    ],
)
def test_costly_foreign_and_special_numbers_are_refused(number: str, reason: str) -> None:
    assert reason in (refusal(number, BOT) or "")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("4155550000", "+14155550000"),
        ("(415) 555-0000", "+14155550000"),
        ("415.555.0000", "+14155550000"),
        ("+1 415 555 0000", "+14155550000"),
        ("1-415-555-0000", "+14155550000"),
        ("14155550000", "+14155550000"),
        ("0155550000", None),  # area code cannot start with 0
        ("4151550000", None),  # exchange cannot start with 1
        ("415555000", None),
        ("+44 20 7946 0958", None),
    ],
)
def test_normalize(raw: str, expected: str | None) -> None:
    assert normalize_us_number(raw) == expected
