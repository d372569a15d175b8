"""Calls and texts reach the log through the real processes and show in the console: a
sandbox phone call with its transcript (an interruption marked) and outcome, a text and its
reply; a redelivered task or a duplicate event leaves one row; a texted ``<script>`` is shown
as text. On SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import redis
from celery import Celery
from sqlalchemy import func, select

from common.task_names import HANDLE_EVENT, STORE_CALL
from store import db
from store.models import Call, Message, TranscriptLine
from tests.console.stack import BOT, STAFF, ConsoleStack
from tests.support import wait_for

CUSTOMER = "+14155550123"


def producer() -> Celery:
    app = Celery("gateframes")
    app.config_from_object("celeryconfig")
    return app


def count(stack: ConsoleStack, stmt) -> int:
    engine = db.make_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(stmt).scalar_one()
    finally:
        engine.dispose()


def test_a_text_and_its_reply_are_in_the_conversation(console: ConsoleStack) -> None:
    sent = console.text(CUSTOMER, "Do you sell slide gates?")
    sid = sent["conversation_sid"]
    assert console.outcome(sent["message_sid"]) == "replied"
    staff = console.staff()
    convo = wait_for(
        lambda: (lambda c: c if len(c["messages"]) == 2 else None)(
            staff.get(f"/staff/api/conversations/{sid}").json()
        )
    )
    asked, answered = convo["messages"]
    assert (asked["author"], asked["body"], asked["by"]) == (
        CUSTOMER,
        "Do you sell slide gates?",
        "customer",
    )
    assert answered["by"] == "assistant" and answered["author"] == BOT
    assert answered["body"].startswith("This is the GateFrames A.I. assistant.")
    assert convo["taken_over"] is False
    listed = staff.get("/staff/api/conversations?q=slide gates").json()["conversations"]
    assert [c["conversation_sid"] for c in listed] == [sid]
    assert (
        staff.get("/staff/api/conversations?q=4155550123").json()["conversations"][0]["customer"]
        == CUSTOMER
    )


def test_a_sandbox_call_is_logged_with_its_transcript_and_outcome(console: ConsoleStack) -> None:
    staff = console.staff()
    running = console.start_sandbox_call("--listen-first", "1")  # talks over the greeting
    live = wait_for(lambda: staff.get("/staff/api/live").json()["calls"], timeout=30)
    call_sid = console.call_sid_of(running)
    assert [(c["call_sid"], c["caller"], c["direction"]) for c in live] == [
        (call_sid, "+14155550100", "inbound")
    ]
    wait_for(lambda: staff.get("/staff/api/live").json()["calls"] == [])  # gone at its end
    call = wait_for(
        lambda: (lambda r: r.json() if r.status == 200 and r.json()["summary"] else None)(
            staff.get(f"/staff/api/calls/{call_sid}")
        ),
        timeout=60,
    )
    assert call["call_sid"] == call_sid and call["direction"] == "inbound"
    assert call["from"] == "+14155550100" and call["to"] == "+14082605145"
    assert call["outcome"] == "caller_hung_up" and call["duration_seconds"] > 0
    roles = [line["role"] for line in call["transcript"]]
    assert roles[:2] == ["assistant", "caller"] and "assistant" in roles[2:]
    greeting = call["transcript"][0]
    assert greeting["interrupted"] is True and greeting["note"].startswith("interrupted at ")
    assert call["summary"].startswith("Call summary: +14155550100")
    page = staff.get(f"/staff/calls/{call_sid}")
    assert page.status == 200
    assert 'class="turn role-assistant interrupted"' in page.text
    assert "caller hung up" in page.text
    found = staff.get("/staff/api/calls?q=(415) 555-0100").json()["calls"]
    assert call_sid in [c["call_sid"] for c in found]


def test_redelivered_and_duplicate_events_leave_one_row(console: ConsoleStack) -> None:
    app = producer()
    now = time.time()
    record = {
        "call_sid": "CA" + "7" * 32,
        "caller": CUSTOMER,
        "direction": "inbound",
        "started_at": now - 30,
        "ended_at": now,
        "outcome": "assistant_hung_up",
        "lines": [["assistant", "Hello"], {"role": "caller", "text": "Hi", "offset": 1.5}],
        "tool_calls": [{"name": "end_call", "arguments": {}, "result": "ok"}],
        "messages": [{"name": "Ann", "callback_number": CUSTOMER, "message": "call me"}],
        "transfers": [],
    }
    for _ in range(3):  # a redelivered task, twice
        app.send_task(STORE_CALL, args=[record])
    sid = record["call_sid"]
    stored = [
        lambda: [r["outcome"] for r in console.log_records("worker")
                 if r.get("call_sid") == sid and r.get("msg", "").startswith("call record ")]
    ][0]  # fmt: skip
    wait_for(lambda: len(stored()) == 3, timeout=30)
    assert sorted(stored()) == ["duplicate", "duplicate", "stored"]
    assert (
        count(
            console,
            select(func.count()).select_from(Call).where(Call.call_sid == record["call_sid"]),
        )
        == 1
    )
    lines = (
        select(func.count())
        .select_from(TranscriptLine)
        .join(Call)
        .where(Call.call_sid == record["call_sid"])
    )
    assert count(console, lines) == 2
    staff = console.staff()
    call = staff.get(f"/staff/api/calls/{sid}").json()
    assert call["notes"]["messages_taken"] == record["messages"]
    assert [t["role"] for t in call["transcript"]] == ["assistant", "caller"]
    assert call["transcript"][1]["offset"] == 1.5
    home = staff.get("/staff/")
    assert "call me" in home.text and "Ann" in home.text
    [callback_id] = re.findall(r'action="/staff/callbacks/(\d+)/done"', home.text)
    done = staff.post(f"/staff/callbacks/{callback_id}/done", {}, token_from="/staff/")
    assert done.status == 303
    after = staff.get("/staff/").text
    assert "Nobody is waiting for a call back." in after
    assert f"done by {STAFF[0]}" in after

    bad = {**record, "call_sid": "CA" + "6" * 32, "transfers": 5}  # not a list: unreadable
    app.send_task(STORE_CALL, args=[bad])
    wait_for(
        lambda: [r for r in console.log_records("worker")
                 if r.get("call_sid") == bad["call_sid"] and r.get("outcome") == "rejected"]
    )  # fmt: skip
    assert staff.get(f"/staff/api/calls/{bad['call_sid']}").status == 404

    sent = console.text("+14155550125", "Do you install openers?")
    assert console.outcome(sent["message_sid"]) == "replied"
    event = {
        "EventType": "onMessageAdded",
        "ConversationSid": sent["conversation_sid"],
        "MessageSid": sent["message_sid"],
        "Author": "+14155550125",
        "Body": "Do you install openers?",
        "Index": "0",
    }
    app.send_task(HANDLE_EVENT, args=[event])  # the same event again, past the web's dedupe
    wait_for(
        lambda: sum(
            1 for r in console.log_records("worker")
            if r.get("message_sid") == sent["message_sid"] and r.get("msg") == "event handled"
        ) == 2
    )  # fmt: skip
    in_thread = (
        select(func.count())
        .select_from(Message)
        .where(Message.conversation_sid == sent["conversation_sid"])
    )
    assert count(console, in_thread) == 2  # the text and the one reply
    assert len([m for m in console.thread(sent["conversation_sid"]) if m["author"] == BOT]) == 1


def test_a_texted_script_is_shown_as_text(console: ConsoleStack) -> None:
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    sent = console.text("+14155550124", attack)
    console.outcome(sent["message_sid"])
    staff = console.staff()
    page = staff.get(f"/staff/conversations/{sent['conversation_sid']}")
    assert page.status == 200
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        in page.text
    )
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text.replace(
        '<script src="/static/staff/console.js" defer></script>', ""
    )
    found = staff.get(f"/staff/api/conversations/{sent['conversation_sid']}").json()
    assert found["messages"][0]["body"] == attack  # JSON carries it as data, for textContent
    assert json.loads(staff.get("/staff/api/conversations?q=<script>").text)["conversations"]


def test_the_worker_purges_what_is_past_the_retention(console: ConsoleStack) -> None:
    def purges() -> int:
        return sum(1 for r in console.log_records("worker") if r.get("outcome") == "purged")

    wait_for(purges, timeout=30)  # the purge the worker ran at start is done
    app, now = producer(), time.time()
    old, new = "CA" + "8" * 32, "CA" + "9" * 32
    for sid, age in ((old, 91 * 86_400), (new, 60)):
        app.send_task(STORE_CALL, args=[{"call_sid": sid, "caller": CUSTOMER,
                                         "started_at": now - age, "ended_at": now - age + 20,
                                         "outcome": "caller_hung_up", "lines": []}])  # fmt: skip
    staff = console.staff()
    wait_for(lambda: staff.get(f"/staff/api/calls/{old}").status == 200)
    wait_for(lambda: staff.get(f"/staff/api/calls/{new}").status == 200)
    before = purges()
    # A new day for the workers: the day's marker is gone, and a worker starting takes it.
    day = time.strftime("%Y-%m-%d", time.gmtime())
    redis.Redis.from_url(console.redis_url).delete(f"gf:log_purge:{day}")
    console.restart("worker")
    wait_for(lambda: purges() > before, timeout=30)
    assert staff.get(f"/staff/api/calls/{old}").status == 404
    assert staff.get(f"/staff/api/calls/{new}").status == 200


def test_a_date_range_exports_as_csv_without_formulas(console: ConsoleStack) -> None:
    sent = console.text("+14155550126", '=HYPERLINK("http://evil")')
    console.outcome(sent["message_sid"])
    staff = console.staff()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    got = staff.get(f"/staff/export?from={today}&to={today}")
    assert got.status == 200 and got.headers["Content-Type"].startswith("text/csv")
    assert f'filename="gateframes-log-{today}-{today}.csv"' in got.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(got.text)))
    mine = [r for r in rows if r["id"] == sent["message_sid"]]
    assert mine and mine[0]["text"] == '\'=HYPERLINK("http://evil")' and mine[0]["kind"] == "text"
    assert {r["kind"] for r in rows} == {"call", "text"}  # the module's calls are in it too
    bad = staff.get(f"/staff/export?from={today}&to=2001-01-01")
    assert bad.status == 400 and "before the start date" in bad.text
