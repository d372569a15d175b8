"""Crashes: a worker killed mid-task, Redis unreachable during a webhook.

Each test runs a stack of its own; no module-wide stack may share its Redis queue.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

from tests.conftest import REDIS_URL
from tests.sms.stack import Stack
from tests.support import wait_for

ALICE = "+14155550100"


def test_worker_killed_mid_task_replies_exactly_once(tmp_path: Path) -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()
    stack = Stack(
        tmp_path,
        REDIS_URL,
        env={
            # short timings for a fast test; the default-timings case is the next test
            "TASK_TIME_LIMIT_SECONDS": "3",
            "CELERY_VISIBILITY_TIMEOUT": "4",
            "TASK_LOCK_SECONDS": "4",
        },
    ).start()
    try:
        stack.openai_fault(status=200, count=1, delay_seconds=6)  # the first reply stalls
        conv = stack.text(ALICE, "please answer once")["conversation_sid"]
        wait_for(lambda: stack.chat_requests(), timeout=20)  # the task is mid-flight
        stack.kill("worker")
        assert stack.bot_messages(conv) == []
        stack.start_worker("worker2")
        replies = stack.wait_bot_messages(conv, timeout=90)
        message_sid = json.loads(replies[0]["attributes"])["reply_to"]
        stack.wait_outcome(message_sid)
        # the killed worker's stalled request is answered into the void; after that nothing
        # else can arrive from it
        wait_for(lambda: all("status" in r for r in stack.chat_requests()), timeout=15)
        assert len(stack.bot_messages(conv)) == 1
        assert json.loads(replies[0]["attributes"])["reply_to"]
    finally:
        stack.stop()


def test_worker_killed_with_default_timings_is_answered_within_3_minutes(tmp_path: Path) -> None:
    """No timing overrides: the visibility timeout and the lock follow the task time limit
    (90 s), so the message of a SIGKILLed worker is answered in ~2 minutes, exactly once."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    stack = Stack(tmp_path, REDIS_URL).start()
    try:
        stack.openai_fault(status=200, count=1, delay_seconds=6)  # the first reply stalls
        sent = stack.text(ALICE, "answer me even if a worker dies")
        conv = sent["conversation_sid"]
        wait_for(lambda: stack.chat_requests(), timeout=20)  # the task is mid-flight
        killed_at = time.monotonic()
        stack.kill("worker")
        stack.start_worker("worker2")
        [reply] = stack.wait_bot_messages(conv, timeout=180)
        waited = time.monotonic() - killed_at
        print(f"answered {waited:.0f} s after the worker was killed")
        assert json.loads(reply["attributes"])["reply_to"] == sent["message_sid"]
        assert waited < 180
        assert stack.wait_outcome(sent["message_sid"])["outcome"] == "replied"
        wait_for(lambda: all("status" in r for r in stack.chat_requests()), timeout=15)
        assert len(stack.bot_messages(conv)) == 1
    finally:
        stack.stop()


def test_redis_down_during_webhook_message_answered_later(tmp_path: Path) -> None:
    # redis_url=None: the stack's own Redis, which it can stop
    stack = Stack(tmp_path, None, env={"PUBLISH_RETRY_SECONDS": "0.5"}).start()
    try:
        conv = stack.text(ALICE, "warm up")["conversation_sid"]
        stack.wait_bot_messages(conv)
        stack.stop_redis()
        sent = stack.text(ALICE, "sent while Redis is down", conversation_sid=conv)
        assert sent["webhook_status"] == 200
        assert "spooled" in sent.get("webhook_body", "spooled")
        spool = tmp_path / "spool"
        assert len(list(spool.glob("*.json"))) == 1
        assert len(stack.bot_messages(conv)) == 1  # nothing can be queued while Redis is down
        stack.start_redis()
        replies = stack.wait_bot_messages(conv, count=2, timeout=90)
        assert json.loads(replies[-1]["attributes"])["reply_to"] == sent["message_sid"]
        wait_for(lambda: not list(spool.glob("*.json*")), timeout=10)
        assert stack.wait_outcome(sent["message_sid"])["outcome"] == "replied"
        assert len(stack.bot_messages(conv)) == 2
    finally:
        stack.stop()


def test_a_message_lost_by_the_broker_is_published_again_from_the_inbox(tmp_path: Path) -> None:
    """Stands in for kombu's two-step fetch losing a message: the queue entry is deleted
    while no worker runs. The web's inbox sweep publishes the event again."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    stack = Stack(
        tmp_path,
        REDIS_URL,
        env={"INBOX_REDELIVER_SECONDS": "3", "SPOOL_DRAIN_INTERVAL_SECONDS": "0.5"},
    ).start()
    try:
        stack.kill("worker")
        sent = stack.text(ALICE, "lost in the broker")
        assert sent["webhook_status"] == 200
        assert client.llen("gateframes") == 1
        client.delete("gateframes")  # the broker lost it
        assert client.zcard("gf:inbox") == 1
        stack.start_worker("worker2")
        [reply] = stack.wait_bot_messages(sent["conversation_sid"], timeout=30)
        assert json.loads(reply["attributes"])["reply_to"] == sent["message_sid"]
        wait_for(lambda: client.zcard("gf:inbox") == 0, timeout=10)
        assert "published again" in stack.log_text("web")
        # the inbox entry is gone (no more republishing) and the broker holds nothing queued
        # or in flight: every delivery there was has run, and there was one reply
        wait_for(lambda: client.llen("gateframes") == 0 and client.hlen("unacked") == 0)
        assert stack.wait_outcome(sent["message_sid"])["outcome"] == "replied"
        assert len(stack.bot_messages(sent["conversation_sid"])) == 1
    finally:
        stack.stop()
