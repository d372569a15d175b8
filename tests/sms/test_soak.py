"""Heavy reliability runs (``make soak``): a thousand texts through worker kills and a Redis
restart, every one answered exactly once.

The Redis here is a private server with an fsync-always append-only file: a Redis restart
keeps the queue only when Redis persists it, and production Redis for this service must be
configured that way (README, "Deploy"). While it is down, webhooks are spooled to disk by the
web process and drained when it returns.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from tests.sms.stack import Stack
from tests.support import wait_for

pytestmark = [pytest.mark.soak, pytest.mark.timeout(1200)]

MESSAGES = 1000
CONVERSATIONS = 100  # ten texts each: under the per-conversation limit of 12 per 30 s


def test_thousand_texts_through_worker_kills_and_a_redis_restart(tmp_path: Path) -> None:
    stack = Stack(
        tmp_path,
        None,  # the stack's own Redis, persistent, which the chaos restarts
        env={
            "PUBLISH_RETRY_SECONDS": "0.5",
            "TASK_TIME_LIMIT_SECONDS": "8",
            "CELERY_VISIBILITY_TIMEOUT": "10",
            "TASK_LOCK_SECONDS": "10",
            "INBOX_REDELIVER_SECONDS": "30",
        },
        worker_concurrency=4,
        persistent_redis=True,
    ).start()
    sent: list[dict] = []
    lock = threading.Lock()
    try:
        convs = [
            stack.text(f"+1415555{i:04d}", "hello")["conversation_sid"]
            for i in range(CONVERSATIONS)
        ]
        wait_for(lambda: all(stack.bot_messages(c) for c in convs[-3:]), timeout=120)

        def send(n: int) -> None:
            conv = convs[n % CONVERSATIONS]
            got = stack.text(
                f"+1415555{n % CONVERSATIONS:04d}", f"message {n}", conversation_sid=conv
            )
            assert got["webhook_status"] == 200, got
            with lock:
                sent.append(got)

        chaos_done = threading.Event()

        def chaos() -> None:
            time.sleep(3)
            stack.kill("worker")
            stack.start_worker("worker2", wait=False)  # comes up while the chaos goes on
            time.sleep(4)
            stack.stop_redis()  # Redis down: webhooks spool to disk
            time.sleep(3)
            stack.start_redis()
            time.sleep(4)
            stack.wait_ready("worker2")  # killed once it runs, not while it starts
            stack.kill("worker2")
            stack.start_worker("worker3", wait=False)
            chaos_done.set()

        threading.Thread(target=chaos, daemon=True).start()
        with ThreadPoolExecutor(8) as pool:
            for n in range(MESSAGES):
                pool.submit(send, n)
                time.sleep(0.015)  # ~60 texts a second, spread over the chaos
        assert chaos_done.wait(60)
        assert len(sent) == MESSAGES

        want = {s["message_sid"] for s in sent}

        def answered() -> set[str]:
            return set(stack.reply_counts())

        try:
            wait_for(lambda: want <= answered(), timeout=300, interval=1.0)
        except TimeoutError:
            missing = want - answered()
            print(stack.logs())
            raise AssertionError(f"{len(missing)} of {MESSAGES} never answered") from None
        # every delivery has run once the broker holds nothing queued or in flight (a crashed
        # worker's messages come back from "unacked" and would run again first)
        broker = redis.Redis.from_url(stack.redis_url)
        wait_for(
            lambda: broker.llen("gateframes") == 0 and broker.hlen("unacked") == 0,
            timeout=120,
            interval=0.5,
        )
        replies = stack.reply_counts()
        doubles = {k: v for k, v in replies.items() if v != 1}
        assert not doubles, f"answered more than once: {doubles}"
        assert want <= set(replies)
    finally:
        stack.stop()
