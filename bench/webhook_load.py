"""Webhook load: signed Conversations webhooks at R/s for T s against a real stack.

Prints the ack latency (p50/p99) the web process gives Twilio, errors, and replies posted versus
messages sent. It starts its own stack (Twilio and OpenAI simulators, web, one Celery worker)
on loopback with Redis DB 12.

    .venv/bin/python -m bench.webhook_load --rate 50 --seconds 20
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from common.twilio_client import RebasedHttpClient
from tests.sms.stack import Stack, http_json, post_form


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="Celery worker concurrency")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    args = parser.parse_args()

    redis.Redis.from_url(args.redis_url).flushdb()
    log_dir = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    stack = Stack(
        log_dir,
        args.redis_url,
        env={"LOG_LEVEL": "WARNING", "CONVO_RATE_LIMIT": "100000 per second"},
        worker_concurrency=args.workers,
    ).start()
    try:
        return run(stack, args)
    finally:
        stack.stop()
        print(f"logs: {log_dir}")


def run(stack: Stack, args: argparse.Namespace) -> int:
    client = Client(
        stack.account_sid,
        stack.auth_token,
        http_client=RebasedHttpClient(stack.twilio_url, timeout=10),
    )
    convs = []
    for i in range(args.conversations):
        sent = stack.text(f"+1415555{i:04d}", "hello")
        convs.append((sent["conversation_sid"], f"+1415555{i:04d}"))
    for conv, _ in convs:
        stack.wait_bot_messages(conv, timeout=60)
    validator = RequestValidator(stack.auth_token)
    url = stack.web_url + "/twilio/convo"
    latencies: list[float] = []
    errors: list[str] = []
    sent_sids: list[str] = []
    lock = threading.Lock()
    total = int(args.rate * args.seconds)

    def one(n: int) -> None:
        conv, author = convs[n % len(convs)]
        msg = client.conversations.v1.conversations(conv).messages.create(
            author=author, body=f"load message {n}"
        )
        form = {
            "AccountSid": stack.account_sid,
            "EventType": "onMessageAdded",
            "ConversationSid": conv,
            "MessageSid": msg.sid,
            "Index": str(msg.index),
            "Author": author,
            "Body": f"load message {n}",
            "Source": "SMS",
        }
        sig = validator.compute_signature(url, form)
        t0 = time.perf_counter()
        status, body, _ = post_form(url, form, {"X-Twilio-Signature": sig})
        dt = time.perf_counter() - t0
        with lock:
            latencies.append(dt * 1000)
            if status != 200 or body.strip() != "ok":
                errors.append(f"{status} {body.strip()}")
            else:
                sent_sids.append(msg.sid)

    start = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=64) as pool:
        futures = []
        for n in range(total):
            due = start + n / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, n))
        for f in futures:
            f.result()
    elapsed = time.perf_counter() - start

    deadline = time.monotonic() + args.drain_timeout
    replied: set[str] = set()
    while time.monotonic() < deadline:
        state = http_json("GET", stack.twilio_url + "/_sandbox/state")
        conversations = state["conversations"]
        conversations = conversations.values() if isinstance(conversations, dict) else conversations
        replied = set()
        for c in conversations:
            for m in c["messages"]:
                if m["author"] == "gateframes-bot":
                    replied.add(json.loads(m.get("attributes") or "{}").get("reply_to"))
        if all(s in replied for s in sent_sids):
            break
        time.sleep(1.0)
    drain = time.monotonic() - (deadline - args.drain_timeout)
    answered = sum(1 for s in sent_sids if s in replied)
    print(f"webhooks sent: {total} in {elapsed:.1f}s ({total / elapsed:.1f}/s)")
    print(
        f"ack latency: p50 {percentile(latencies, 0.5):.1f} ms  "
        f"p99 {percentile(latencies, 0.99):.1f} ms  max {max(latencies):.1f} ms  "
        f"mean {statistics.fmean(latencies):.1f} ms"
    )
    print(f"errors: {len(errors)} {sorted(set(errors))[:5]}")
    print(
        f"replies posted: {answered} / {len(sent_sids)} accepted messages "
        f"(all answered {drain:.1f}s after the load ended)"
    )
    return 0 if not errors and answered == len(sent_sids) else 1


if __name__ == "__main__":
    sys.exit(main())
