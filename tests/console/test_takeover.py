"""Taking a text thread over, through the real processes: the assistant stays silent there
(``@ai`` included) while staff hold it, a staff reply reaches the thread as the bot and is
logged with the staff number, and releasing it (or the idle time running out) gives the
thread back. A customer asking for a person is told someone will follow up, and staff get a
text with the conversation's console link."""

from __future__ import annotations

import redis

from common.names import takeover_key
from tests.conftest import REDIS_URL
from tests.console.stack import BOT, NOTIFY, STAFF, ConsoleStack
from tests.support import wait_for

BACKENDS = ("sqlite",)


def bot_lines(stack: ConsoleStack, sid: str) -> list[str]:
    return [m["body"] for m in stack.thread(sid) if m["author"] == BOT]


def test_takeover_silences_the_assistant_until_released(console: ConsoleStack) -> None:
    customer = "+14155550131"
    first = console.text(customer, "Do you sell gate remotes?")
    sid = first["conversation_sid"]
    assert console.outcome(first["message_sid"]) == "replied"
    staff = console.staff()
    page = f"/staff/conversations/{sid}"
    taken = staff.post(f"{page}/takeover", {}, token_from=page)
    assert taken.status == 303 and taken.location == page
    shown = staff.get(page)
    assert f"Taken over by {STAFF[0]}" in shown.text and 'id="release"' in shown.text
    assert staff.get(f"/staff/api/conversations/{sid}").json()["taken_over"] is True

    for body in ("Hello? Anyone there?", "@ai please answer"):
        asked = console.text(customer, body, conversation_sid=sid)
        assert console.outcome(asked["message_sid"]) == "taken_over"
    assert len(bot_lines(console, sid)) == 1  # only the answer from before the takeover

    sent = staff.post(
        f"{page}/reply", {"body": "Hi, this is Sam from GateFrames."}, token_from=page
    )
    assert sent.status == 303
    wait_for(lambda: "Hi, this is Sam from GateFrames." in bot_lines(console, sid))
    convo = wait_for(
        lambda: (lambda c: c if c["messages"][-1]["by"] == STAFF[0] else None)(
            staff.get(f"/staff/api/conversations/{sid}").json()
        )
    )
    last = convo["messages"][-1]
    assert (last["author"], last["body"]) == (BOT, "Hi, this is Sam from GateFrames.")
    assert [m["by"] for m in convo["messages"]] == [
        "customer", "assistant", "customer", "customer", STAFF[0],
    ]  # fmt: skip

    too_long = staff.post(f"{page}/reply", {"body": "x" * 1601}, token_from=page)
    assert too_long.status == 303 and too_long.location.endswith("?error=length")
    assert "A reply needs 1 to 1600 characters." in staff.get(too_long.location).text
    released = staff.post(f"{page}/release", {}, token_from=page)
    assert released.status == 303
    assert "The assistant answers this thread." in staff.get(page).text
    after = console.text(customer, "Thanks! And do you sell keypads?", conversation_sid=sid)
    assert console.outcome(after["message_sid"]) == "replied"
    assert len(bot_lines(console, sid)) == 3  # the staff reply, and no 1601-character one
    history = staff.get(page).text
    assert f"{STAFF[0]} took it" in history and f"released by {STAFF[0]}" in history


def test_an_idle_takeover_gives_the_thread_back(console: ConsoleStack) -> None:
    customer = "+14155550132"
    first = console.text(customer, "Hi there")
    sid = first["conversation_sid"]
    console.outcome(first["message_sid"])
    staff = console.staff()
    page = f"/staff/conversations/{sid}"
    staff.post(f"{page}/takeover", {}, token_from=page)
    r = redis.Redis.from_url(REDIS_URL)
    ttl = r.ttl(takeover_key(sid))
    assert 59 * 60 < ttl <= 60 * 60  # TAKEOVER_IDLE_MINUTES, renewed by each staff message
    r.expire(takeover_key(sid), 1)  # the idle time runs out
    wait_for(lambda: not r.exists(takeover_key(sid)), timeout=5)
    asked = console.text(customer, "Still there?", conversation_sid=sid)
    assert console.outcome(asked["message_sid"]) == "replied"


def test_asking_for_a_person_alerts_staff_with_the_console_link(console: ConsoleStack) -> None:
    customer = "+14155550133"
    asked = console.text(customer, "Can I talk to a real person please?")
    sid = asked["conversation_sid"]
    assert console.outcome(asked["message_sid"]) == "handed_to_staff"
    [reply] = bot_lines(console, sid)
    assert reply == (
        "This is the GateFrames A.I. assistant. I've asked a person from our team to follow up "
        "with you here as soon as they can."
    )
    alerts = [s for s in console.state()["sms"] if s["to"] == NOTIFY]
    assert len(alerts) == 1
    assert f"{console.web_url}/staff/conversations/{sid}" in alerts[0]["body"]
    assert customer in alerts[0]["body"] and alerts[0]["from"] == "+14082605145"
