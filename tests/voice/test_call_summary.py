"""The after-call summary, end to end: queued by name as the relay queues it, a real Celery
worker summarises the call through the OpenAI chat simulator and texts every staff number
and posts in the staff Conversation through the Twilio simulator, exactly once, a SIGKILLed
worker included.

One stack for the module (its own Redis queue: nothing else runs on it); the worker's short
timings (TASK_TIME_LIMIT_SECONDS=3) make the crash case fast, and the crash test runs last.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from relay.call import notify
from tests.conftest import REDIS_URL
from tests.sms.stack import Stack
from tests.support import wait_for

STAFF = ("+14155550142", "+14155550143")
OWNER = "+14155550199"  # VOICEMAIL_NOTIFY_TO: an alias destination of the summary
CALLER = "+14155550100"
BOT = "gateframes-bot"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {
        "STAFF_NOTIFY_TO": ",".join(STAFF),
        "VOICEMAIL_NOTIFY_TO": OWNER,
        "TASK_TIME_LIMIT_SECONDS": "3",
        "CELERY_VISIBILITY_TIMEOUT": "4",
        "TASK_LOCK_SECONDS": "4",
    }
    s = Stack(Path(tmp_path_factory.mktemp("summary")), REDIS_URL, env=env).start()
    try:
        # the staff Conversation exists before the worker that posts into it is configured
        conv = s_client(s).conversations.v1.conversations.create(friendly_name="GateFrames staff")
        s.env["STAFF_CONVERSATION_SID"] = conv.sid
        s.restart("worker")
        s.staff_conversation = conv.sid  # type: ignore[attr-defined]
        yield s
    finally:
        s.stop()


def s_client(stack: Stack):
    from twilio.rest import Client

    from sandbox.twilio_sim.sdk import RebasedHttpClient

    http = RebasedHttpClient(stack.twilio_url)
    return Client(stack.account_sid, stack.auth_token, http_client=http)


def call_record(seconds: float = 80, **extra) -> dict:
    now = time.time()
    return {
        "call_sid": "CA" + secrets.token_hex(16),
        "caller": CALLER,
        "direction": "inbound",
        "started_at": now - seconds,
        "ended_at": now,
        "outcome": "transferred",
        "lines": [
            ["assistant", "Hi, this is the GateFrames assistant. How can I help?"],
            ["caller", "My swing gate opener stopped working, can someone call me back?"],
            ["assistant", "I'll put you through to our service team now."],
        ],
        "tool_calls": [
            {
                "name": "transfer_to_staff",
                "arguments": {"reason": "opener stopped"},
                "result": "no-answer",
            },
        ],
        "messages": [{"for": "service", "text": "call back about the swing gate opener"}],
        "transfers": [{"to": STAFF[0], "status": "no-answer"}],
        **extra,
    }


def sms_since(stack: Stack, before: int) -> list[dict]:
    """The SMS sent since ``before`` (tests run one call at a time)."""
    return stack.state()["sms"][before:]


def posts_for(stack: Stack, call_sid: str) -> list[dict]:
    messages = stack.messages(stack.staff_conversation)  # type: ignore[attr-defined]
    return [
        m for m in messages if json.loads(m["attributes"] or "{}").get("call_summary") == call_sid
    ]


def handled(stack: Stack, call_sid: str) -> list[dict]:
    return [
        r
        for r in stack.log_records()
        if r.get("msg") == "call summary handled" and r.get("call_sid") == call_sid
    ]


def delivered(stack: Stack, call_sid: str, before: int) -> tuple[list[dict], list[dict]]:
    """Once a worker logged the summary handled (the proof it was considered)."""
    wait_for(lambda: handled(stack, call_sid), timeout=60)
    return sms_since(stack, before), posts_for(stack, call_sid)


def test_summary_texts_every_staff_number_and_posts_once(stack: Stack) -> None:
    record, before = call_record(), len(stack.state()["sms"])
    assert notify.queue_summary(record)
    sms, posts = delivered(stack, record["call_sid"], before)
    assert sorted(m["to"] for m in sms) == sorted([*STAFF, OWNER])
    body = sms[0]["body"]
    assert {m["body"] for m in sms} == {body} and {m["from"] for m in sms} == {"+14082605145"}
    assert body.startswith(f"Call summary: {CALLER} (inbound, 80 s") and len(body) <= 600
    [post] = posts
    assert (post["author"], post["body"]) == (BOT, body)
    request = stack.chat_requests()[-1]
    system, user = request["body"]["messages"]
    assert "who called" in system["content"] and "swing gate opener" in user["content"]
    assert [r["outcome"] for r in handled(stack, record["call_sid"])] == ["sent"]


def test_a_missed_call_gets_a_one_line_notice_without_the_model(stack: Stack) -> None:
    asked, before = len(stack.chat_requests()), len(stack.state()["sms"])
    record = call_record(seconds=2, lines=[["assistant", "Hi, this is GateFrames."]])
    record.update(tool_calls=[], messages=[], transfers=[], outcome="caller_hung_up")
    assert notify.queue_summary(record)
    sms, [post] = delivered(stack, record["call_sid"], before)
    assert len(sms) == 3 and {m["body"] for m in sms} == {post["body"]}
    assert post["body"].startswith(f"Missed call from {CALLER} at ")
    assert record["call_sid"] in post["body"] and "\n" not in post["body"]
    assert len(stack.chat_requests()) == asked  # no model call


def test_a_model_that_refuses_still_gets_staff_a_plain_summary(stack: Stack) -> None:
    stack.openai_fault(status=400, count=1)
    record, before = call_record(), len(stack.state()["sms"])
    assert notify.queue_summary(record)
    sms, [post] = delivered(stack, record["call_sid"], before)
    assert len(sms) == 3
    assert "Caller said: My swing gate opener stopped working" in post["body"]
    assert "Ended: transferred." in post["body"]


def test_worker_killed_mid_summary_still_sends_once(stack: Stack) -> None:
    stack.openai_fault(status=200, count=1, delay_seconds=6)  # the first summary stalls
    asked, before = len(stack.chat_requests()), len(stack.state()["sms"])
    record = call_record()
    assert notify.queue_summary(record)
    wait_for(lambda: len(stack.chat_requests()) > asked, timeout=20)  # mid-flight
    stack.kill("worker")
    assert sms_since(stack, before) == [] and posts_for(stack, record["call_sid"]) == []
    stack.start_worker("worker2")
    delivered(stack, record["call_sid"], before)
    # the killed worker's stalled request is answered into the void; then nothing else can
    # come from it
    wait_for(lambda: all("status" in r for r in stack.chat_requests()), timeout=15)
    assert sorted(m["to"] for m in sms_since(stack, before)) == sorted([*STAFF, OWNER])
    assert len(posts_for(stack, record["call_sid"])) == 1
    assert [r["outcome"] for r in handled(stack, record["call_sid"])] == ["sent"]
