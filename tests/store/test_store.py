"""The log's writes, reads and retention on SQLite and PostgreSQL: idempotent on SIDs, a
summary that arrives before its call, search, callbacks, purge and erase (also from the
command line), and an unmigrated database named as such."""

from __future__ import annotations

import datetime as dt
import subprocess

from sqlalchemy import func, select

from store import db, reads, retention, writes
from store.models import Call, Callback, Message, ToolCall, TranscriptLine
from tests.support import PYTHON, base_env

BOT = "+14082605145"
CALLER = "+14155550100"


def record(call_sid: str = "CA" + "1" * 32, days_ago: float = 0.0, **extra) -> dict:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago, seconds=40)
    return {
        "call_sid": call_sid,
        "caller": CALLER,
        "direction": "inbound",
        "started_at": start.timestamp(),
        "ended_at": (start + dt.timedelta(seconds=40)).isoformat(),
        "outcome": "transferred",
        "lines": [
            ["assistant (interrupted at 2.4 s)", "Hello, this is GateFrames"],
            ["caller", "My slide gate opener is broken"],
            {
                "role": "assistant",
                "text": "Let me connect you.",
                "offset": 9.5,
                "interrupted": False,
            },
            ["tool", "transfer to staff -> redirected"],
        ],
        "tool_calls": [
            {"name": "transfer_to_staff", "arguments": {"reason": "broken"}, "result": "ok"}
        ],
        "messages": [
            {"name": "Ann", "callback_number": "+14155550111", "message": "call me after 5"},
            {"recorded_message": "https://api.twilio.com/rec/RE1", "seconds": 12},
        ],
        "transfers": [{"to": "+14155550177", "status": "no-answer"}],
        **extra,
    }


def counts() -> dict[str, int]:
    with db.session() as s:
        return {
            m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (Call, TranscriptLine, ToolCall, Callback, Message)
        }


def text(sid: str, conversation: str, author: str, body: str, days_ago: float = 0.0, **kw) -> bool:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    return writes.store_message(
        message_sid=sid, conversation_sid=conversation, author=author, body=body, at=at,
        sender=kw.pop("sender", "customer"), **kw,
    )  # fmt: skip


def test_a_call_record_is_stored_once_however_often_it_comes(log_url: str) -> None:
    first = writes.store_call(record(), BOT)
    again = writes.store_call(record(), BOT)
    assert first[1] is True and again == (first[0], False)
    assert counts() == {
        "calls": 1,
        "transcript_lines": 4,
        "tool_calls": 1,
        "callbacks": 3,
        "messages": 0,
    }
    call = reads.call("CA" + "1" * 32)
    assert call is not None
    assert (call.from_number, call.to_number, call.direction) == (CALLER, BOT, "inbound")
    assert round(call.duration_seconds or 0) == 40 and call.outcome == "transferred"
    assert (call.transfer_to, call.transfer_status) == ("+14155550177", "no-answer")
    assert call.recording_url == "https://api.twilio.com/rec/RE1" and call.voicemail
    greeting, said, answer, tool = call.lines
    assert (greeting.role, greeting.interrupted, greeting.note) == (
        "assistant",
        True,
        "interrupted at 2.4 s",
    )
    assert (said.role, said.interrupted, said.offset_seconds) == ("caller", False, None)
    assert (answer.offset_seconds, tool.role) == (9.5, "tool")
    assert call.tool_calls[0].arguments == {"reason": "broken"}
    kinds = sorted(c.kind for c in reads.call_callbacks(call.call_sid))
    assert kinds == ["message", "missed_transfer", "voicemail"]


def test_a_summary_before_its_record_keeps_both(log_url: str) -> None:
    writes.store_summary("CA" + "2" * 32, "Ann called about a broken opener.")
    assert reads.calls() == []  # not a call until the relay's record arrives
    writes.store_call(record("CA" + "2" * 32), BOT)
    writes.store_summary("CA" + "2" * 32, "Ann called about a broken opener.")
    [call] = reads.calls()
    assert call.summary == "Ann called about a broken opener." and call.outcome == "transferred"


def test_texts_are_stored_once_and_found_by_number_and_words(log_url: str) -> None:
    convo = "CH" + "a" * 32
    assert text("IM1", convo, CALLER, "Do you sell SLIDE gates?") is True
    assert text("IM1", convo, CALLER, "Do you sell SLIDE gates?") is False
    text("IM2", convo, "gateframes-bot", "Yes we do.", sender="assistant", reply_to="IM1")
    text("IM3", "CH" + "b" * 32, "+14155550122", "100% sure_ly?")
    assert counts()["messages"] == 3
    for q in ("slide gates", "(415) 555-0100", "5550100", convo):
        assert [t.conversation_sid for t in reads.threads(q)] == [convo], q
    [thread] = reads.threads("slide")
    assert (thread.customer, thread.count, thread.last_body) == (CALLER, 2, "Yes we do.")
    assert [t.conversation_sid for t in reads.threads("100%")] == ["CH" + "b" * 32]
    assert reads.threads("100_") == reads.threads("1%y") == []  # literal, not wildcards
    writes.store_call(record(), BOT)
    assert [c.call_sid for c in reads.calls("opener is broken")] == ["CA" + "1" * 32]
    assert [c.call_sid for c in reads.calls("415-555-0100")] == ["CA" + "1" * 32]
    assert reads.calls("nothing like this") == []


def test_a_callback_is_done_once_by_whoever_did_it(log_url: str) -> None:
    writes.store_call(record(), BOT)
    first, *_ = reads.callbacks()
    assert writes.mark_callback_done(first.id, "+14155550180") is True
    assert writes.mark_callback_done(first.id, "+14155550181") is False
    done = reads.callbacks(open_only=False)
    assert [(c.id, c.done_by) for c in done] == [(first.id, "+14155550180")]
    assert len(reads.callbacks()) == 2


def test_purge_deletes_only_what_is_older_than_the_retention(log_url: str) -> None:
    writes.store_call(record("CA" + "3" * 32, days_ago=91), BOT)
    writes.store_call(record("CA" + "4" * 32, days_ago=89), BOT)
    text("IM1", "CH" + "a" * 32, CALLER, "old", days_ago=100)
    text("IM2", "CH" + "a" * 32, CALLER, "new", days_ago=1)
    removed = retention.purge(90)
    assert (removed.calls, removed.texts) == (1, 1)
    assert [c.call_sid for c in reads.calls()] == ["CA" + "4" * 32]
    assert counts() == {
        "calls": 1,
        "transcript_lines": 4,
        "tool_calls": 1,
        "callbacks": 3,
        "messages": 1,
    }


def test_erase_removes_one_numbers_calls_and_threads_from_the_command_line(log_url: str) -> None:
    writes.store_call(record("CA" + "5" * 32), BOT)
    writes.store_call(record("CA" + "6" * 32, caller="+14155550199"), BOT)
    text("IM1", "CH" + "a" * 32, CALLER, "mine")
    text("IM2", "CH" + "a" * 32, "gateframes-bot", "reply to me", sender="assistant")
    text("IM3", "CH" + "b" * 32, "+14155550199", "someone else")
    env = base_env({"DATABASE_URL": log_url})
    out = subprocess.run(
        [PYTHON, "-m", "store", "erase", CALLER],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"store: erased 1 call(s) and 2 text(s) of {CALLER}"
    assert [c.call_sid for c in reads.calls()] == ["CA" + "6" * 32]
    assert [t.conversation_sid for t in reads.threads()] == ["CH" + "b" * 32]
    bad = subprocess.run(
        [PYTHON, "-m", "store", "erase", "4155550100"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "E.164" in bad.stderr


def test_an_unmigrated_database_is_named_not_used(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    env = base_env({"DATABASE_URL": url})
    check = subprocess.run(
        [PYTHON, "-m", "store", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 1
    assert "the database has no schema: run `python -m store migrate`" in check.stderr
    migrated = subprocess.run(
        [PYTHON, "-m", "store", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0 and "schema at 0001" in migrated.stdout
    again = subprocess.run(
        [PYTHON, "-m", "store", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0
