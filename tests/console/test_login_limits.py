"""Sign-in attempts per client IP (STAFF_LOGIN_IP_LIMIT, counted in Redis over both steps):
past the limit every attempt is refused with 429 before any code is looked at or sent."""

from __future__ import annotations

from tests.console.client import StaffClient, texted_codes
from tests.console.stack import STAFF, ConsoleStack

BACKENDS = ("sqlite",)
STACK_ENV = {"STAFF_LOGIN_IP_LIMIT": "3 per hour"}


def test_attempts_past_the_ip_limit_are_refused(console: ConsoleStack) -> None:
    client = StaffClient(console.web_url)
    for code in ("111111", "222222", "333333"):
        tried = client.post(
            "/staff/login/code", {"number": STAFF[0], "code": code}, token_from="/staff/login"
        )
        assert tried.status == 400
    refused = client.post("/staff/login", {"number": STAFF[0]}, token_from="/staff/login")
    assert refused.status == 429 and "Too many sign-in attempts" in refused.text
    other = StaffClient(console.web_url)  # a new session from the same address: same limit
    again = other.post("/staff/login/code", {"number": STAFF[0], "code": "444444"},
                       token_from="/staff/login")  # fmt: skip
    assert again.status == 429
    assert texted_codes(console.twilio_url, STAFF[0]) == []  # no code was sent
    refusals = [r for r in console.log_records("web") if r.get("reason") == "ip_limit"]
    assert len(refusals) == 2
