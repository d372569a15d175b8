"""Signing in to the console, through the real web process, worker and Twilio simulator:
the code is read back from the simulator; a number not on STAFF_NUMBERS gets the same answer
and no text; the sixth code is refused even when right; a POST without its CSRF token is
refused and changes nothing; pages without a session go to the login page, JSON answers 401;
the cookie is Secure, HttpOnly and SameSite=Lax; logout ends the session on the server."""

from __future__ import annotations

import redis

from common.names import takeover_key
from tests.conftest import REDIS_URL
from tests.console.client import StaffClient, texted_codes
from tests.console.stack import STAFF, ConsoleStack
from tests.support import wait_for

BACKENDS = ("sqlite",)
STACK_ENV = {"STAFF_LOGIN_LIMIT": "5 per 15 minutes"}  # the default
STRANGER = "+14155550166"
CONVERSATION = "CH" + "a" * 32


def test_a_code_read_from_the_simulator_signs_in(console: ConsoleStack) -> None:
    client = console.staff(STAFF[1])
    home = client.get("/staff/")
    assert home.status == 200 and "Calls in progress" in home.text
    assert f"Signed in as {STAFF[1]}" in home.text
    cookie = [c for c in client.set_cookies if c.startswith("gf_staff=")][-1]
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=lax", "path=/staff"} <= flags
    assert "no-store" in home.headers["Cache-Control"]


def test_a_number_not_on_staff_gets_the_same_answer_and_no_text(console: ConsoleStack) -> None:
    stranger, staff = StaffClient(console.web_url), StaffClient(console.web_url)
    asked = stranger.post("/staff/login", {"number": STRANGER}, token_from="/staff/login")
    before = len(texted_codes(console.twilio_url, STAFF[0]))
    answer = staff.post("/staff/login", {"number": STAFF[0]}, token_from="/staff/login")
    assert asked.status == answer.status == 200
    said = "If this number belongs to GateFrames staff, a 6-digit code is on its way by text."
    assert said in asked.text and said in answer.text
    # The staff code, queued after the stranger's request, arrives: the stranger's got none.
    wait_for(lambda: len(texted_codes(console.twilio_url, STAFF[0])) > before, timeout=30)
    assert [s for s in console.state()["sms"] if s["to"] == STRANGER] == []
    for code in ("000000", "123456"):
        tried = stranger.post(
            "/staff/login/code", {"number": STRANGER, "code": code}, token_from="/staff/login"
        )
        assert tried.status == 400 and "wrong or has expired" in tried.text
    assert stranger.get("/staff/").status == 302


def test_the_sixth_code_is_refused_even_when_right(console: ConsoleStack) -> None:
    client = StaffClient(console.web_url)
    before = len(texted_codes(console.twilio_url, STAFF[0]))
    client.post("/staff/login", {"number": STAFF[0]}, token_from="/staff/login")
    codes = wait_for(
        lambda: (lambda c: c if len(c) > before else None)(
            texted_codes(console.twilio_url, STAFF[0])
        )
    )
    right = codes[-1]
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        tried = client.post(
            "/staff/login/code", {"number": STAFF[0], "code": wrong}, token_from="/staff/login"
        )
        assert tried.status == 400
    sixth = client.post(
        "/staff/login/code", {"number": STAFF[0], "code": right}, token_from="/staff/login"
    )
    assert sixth.status == 429 and "Too many wrong codes" in sixth.text
    assert client.get("/staff/").status == 302  # not signed in
    again = client.post(
        "/staff/login/code", {"number": STAFF[0], "code": right}, token_from="/staff/login"
    )
    assert again.status == 400  # the code is gone: a new one must be asked for


def test_a_post_without_its_csrf_token_is_refused(console: ConsoleStack) -> None:
    client = console.staff()
    refused = client.post(f"/staff/conversations/{CONVERSATION}/takeover", {})
    assert refused.status == 400 and "did not come from the console" in refused.text
    forged = client.post(f"/staff/conversations/{CONVERSATION}/takeover", {"csrf_token": "x" * 40})
    assert forged.status == 400
    r = redis.Redis.from_url(REDIS_URL)
    assert r.exists(takeover_key(CONVERSATION)) == 0  # nothing was taken over
    sign_in_without = StaffClient(console.web_url).post("/staff/login", {"number": STAFF[0]})
    assert sign_in_without.status == 400
    done = client.post(
        f"/staff/conversations/{CONVERSATION}/takeover", {},
        token_from=f"/staff/conversations/{CONVERSATION}",
    )  # fmt: skip
    assert done.status == 303 and r.exists(takeover_key(CONVERSATION)) == 1
    r.delete(takeover_key(CONVERSATION))


def test_without_a_session_pages_redirect_and_json_answers_401(console: ConsoleStack) -> None:
    anonymous = StaffClient(console.web_url)
    pages = ("/staff/", "/staff/search?q=gate", f"/staff/conversations/{CONVERSATION}",
             "/staff/export?from=2026-01-01&to=2026-01-02",
             "/staff/calls/CA" + "1" * 32)  # fmt: skip
    for path in pages:
        page = anonymous.get(path)
        assert page.status == 302 and page.location.startswith("/staff/login?next="), path
    for path in ("/staff/api/calls", "/staff/api/live", f"/staff/api/conversations/{CONVERSATION}",
                 "/staff/api/conversations", "/staff/api/calls/CA" + "1" * 32):  # fmt: skip
        answer = anonymous.get(path)
        assert answer.status == 401 and answer.json() == {"error": "login required"}, path


def test_logout_ends_the_session_for_a_copied_cookie_too(console: ConsoleStack) -> None:
    client = console.staff()
    copied = dict(client.cookies)
    assert client.get("/staff/api/live").status == 200
    out = client.post("/staff/logout", {}, token_from="/staff/")
    assert out.status == 303
    thief = StaffClient(console.web_url)
    thief.cookies = copied
    assert thief.get("/staff/api/live").status == 401


def test_codes_texted_to_one_number_are_limited(console: ConsoleStack) -> None:
    """STAFF_LOGIN_LIMIT (5 per 15 minutes): a sixth request gets the same page, no text."""
    number = STAFF[1]  # signed in once above: 4 more codes are allowed
    client = StaffClient(console.web_url)
    before = len(texted_codes(console.twilio_url, number))
    for _ in range(6):
        asked = client.post("/staff/login", {"number": number}, token_from="/staff/login")
        assert asked.status == 200 and "a 6-digit code is on its way" in asked.text
    wait_for(lambda: len(texted_codes(console.twilio_url, number)) >= before + 4, timeout=30)
    # A code for the other number, asked after them all: once it is here, the worker has
    # handled every earlier request, so no fifth code is still on its way.
    first = len(texted_codes(console.twilio_url, STAFF[0]))
    StaffClient(console.web_url).post(
        "/staff/login", {"number": STAFF[0]}, token_from="/staff/login"
    )
    wait_for(lambda: len(texted_codes(console.twilio_url, STAFF[0])) > first, timeout=30)
    assert len(texted_codes(console.twilio_url, number)) == before + 4
    limited = [r for r in console.log_records("web") if r.get("reason") == "number_limit"]
    assert len(limited) == 2
