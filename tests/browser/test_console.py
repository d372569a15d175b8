"""The staff console in Debian's headless Chromium, on the real stack (web, relay, worker,
simulators, a SQLite log): sign in with the code the Twilio simulator saw texted, see a
sandbox call and its transcript, search, take a text thread over and reply. Screenshots are
kept beside the demo's (``var/artifacts/console-*.png``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from sandbox.services import ROOT
from tests.conftest import REDIS_URL
from tests.console.client import texted_codes
from tests.console.stack import BOT, STAFF, ConsoleStack
from tests.databases import fresh_database
from tests.support import wait_for

pytestmark = [pytest.mark.browser]
ARTIFACTS = ROOT / "var" / "artifacts"
CUSTOMER = "+14155550144"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    log_dir = tmp_path_factory.mktemp("console-browser")
    url = fresh_database("sqlite", log_dir)
    # development: the cookie is not Secure, so Chromium keeps it on http://localhost
    s = ConsoleStack(log_dir, REDIS_URL, url, {"APP_ENV": "development"}).start()
    yield s
    s.stop()


def test_staff_sign_in_read_a_call_search_and_take_over(console: ConsoleStack, browser) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    call_sid = console.sandbox_call("--listen-first", "1")
    texted = console.text(CUSTOMER, "Which slide gate opener fits a 20 ft gate?")
    sid = texted["conversation_sid"]
    assert console.outcome(texted["message_sid"]) == "replied"

    page = browser.new_page()
    base = f"http://localhost:{console.ports.web}"
    page.goto(base + "/staff/")
    assert page.url.startswith(base + "/staff/login")
    before = len(texted_codes(console.twilio_url, STAFF[0]))
    page.fill("#number", STAFF[0])
    page.click("#number-form button")
    page.wait_for_selector("#code")
    codes = wait_for(
        lambda: (lambda c: c if len(c) > before else None)(
            texted_codes(console.twilio_url, STAFF[0])
        )
    )
    page.fill("#code", codes[-1])
    page.click("#code-form button")
    page.wait_for_selector("#live-h")

    # Today: the call (its record arrives a moment after the call ends) and the text.
    link = f'a[href="/staff/calls/{call_sid}"]'
    wait_for(lambda: page.reload() or page.query_selector(link), timeout=30)
    # Polled from Python: the page's CSP forbids the eval a string predicate would need.
    wait_for(lambda: page.evaluate("() => window.consoleState.liveUpdates") > 0, timeout=15)
    assert page.query_selector(f'a[href="/staff/conversations/{sid}"]')
    page.screenshot(path=str(ARTIFACTS / "console-home.png"), full_page=True)

    page.click(link)
    page.wait_for_selector("#transcript")
    turns = page.eval_on_selector_all(
        "#transcript .turn",
        "els => els.map(e => [e.className, e.querySelector('.said').textContent])",
    )
    assert turns[0][0] == "turn role-assistant interrupted"
    assert "role-caller" in turns[1][0] and turns[1][1]
    assert "interrupted at" in page.inner_text("#transcript .cut")
    assert "caller hung up" in page.inner_text("#outcome")
    page.screenshot(path=str(ARTIFACTS / "console-call.png"), full_page=True)

    # Search by words texted, then open the thread.
    page.click("text=Search")
    page.fill("#q", "20 ft gate")
    page.click(".search button")
    page.wait_for_selector("#text-results")
    page.click(f'#text-results a[href="/staff/conversations/{sid}"]')
    page.wait_for_selector("#thread")

    page.click("#takeover")
    page.wait_for_selector("#release")
    assert "Taken over by " + STAFF[0] in page.inner_text("#status")
    page.fill("#body", "Hi, this is Sam at GateFrames. I'll call you in 10 minutes.")
    page.click("#reply-form button")
    wait_for(
        lambda: any(
            t.startswith("Hi, this is Sam")
            for t in page.eval_on_selector_all(
                "#thread .msg.by-staff .body", "els => els.map(e => e.textContent)"
            )
        ),
        timeout=20,
    )
    staff_line = page.inner_text("#thread .msg.by-staff .who")
    assert staff_line == f"Staff {STAFF[0]}"
    sent = [m for m in console.thread(sid) if m["author"] == BOT]
    assert sent[-1]["body"] == "Hi, this is Sam at GateFrames. I'll call you in 10 minutes."
    page.screenshot(path=str(ARTIFACTS / "console-conversation.png"), full_page=True)
    assert (ARTIFACTS / "console-conversation.png").stat().st_size > 0
