"""Soak (``make soak``): 100 phone calls and 50 texts a second, side by side, for
``SOAK_SECONDS`` (300 by default).

Calls are the benchmark's (``bench.relay_load``): 50 timestamped media frames a second each,
through a relay to the benchmark's echoing Realtime endpoint (``bench.echo_upstream``), marks
echoed like Twilio. Texts go through
the whole SMS stack (Twilio simulator → signed webhook → web → Celery → OpenAI simulator).
Passing means: no call error, no frame lost, every text answered exactly once, and neither
the relay's nor the web's resident memory grows by 10 % or more after warm-up.
``SOAK_SECONDS`` shortens the run for a quick look.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.relay_load import Target, run_load
from sandbox import services
from sandbox.services import PYTHON, Service, free_port
from sandbox.stack import children
from tests.conftest import REDIS_URL
from tests.sms.stack import Stack
from tests.support import wait_for

pytestmark = [pytest.mark.soak, pytest.mark.timeout(1800)]
SECONDS = float(os.environ.get("SOAK_SECONDS", "300"))
CALLS, TEXTS_PER_SECOND = 100, 50
#: Each conversation may post 12 events per 30 s (CONVO_RATE_LIMIT); 300 conversations keep
#: 50 texts a second under it, so every text must be answered.
CONVERSATIONS = 300


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and its direct children (gunicorn's master and worker)."""
    return rss_kib(pid) + sum(rss_kib(child) for child in children(pid))


def test_hundred_calls_and_fifty_texts_a_second(tmp_path: Path) -> None:
    # One stack: the SMS processes, plus a relay (its environment the stack's: streams are
    # signed like Twilio's, over RELAY_PUBLIC_URL + path) pointed at the echoing upstream.
    stack = Stack(tmp_path, REDIS_URL, env={"LOG_LEVEL": "WARNING"}, worker_concurrency=4)
    sim_port, relay_url = free_port(), stack.ports.relay_url
    echo = (PYTHON, "-m", "bench.echo_upstream", "--port", str(sim_port))
    try:
        stack.start()
        stack.run(Service("echo-upstream", echo, sim_port, health="/healthz"))
        relay_env = {
            "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{sim_port}/v1/realtime",
            "SESSION_TIME_LIMIT_SECONDS": "3600",
        }
        stack.run(services.relay(stack.ports.relay, env=relay_env))
        relay_pid = stack.pid("relay")
        template = f"{relay_url}/token/{{token}}"
        target = Target(
            template, stack.creds.encryption_key, relay_pid, sim_port, stack.pid("echo-upstream"),
            twilio_auth_token=stack.auth_token, relay_public_url=relay_url,
        )  # fmt: skip
        calls: list = []
        caller = threading.Thread(
            target=lambda: calls.append(run_load(target, CALLS, SECONDS, generators=2))
        )
        caller.start()

        sent: list[dict] = []
        errors: list[str] = []
        convs = [
            stack.text(f"+1415666{i:04d}", "hi")["conversation_sid"] for i in range(CONVERSATIONS)
        ]
        web_pid = stack.pid("web")
        time.sleep(20)  # warm-up: sessions open, caches and pools filled
        base_rss = {"relay": rss_kib(relay_pid), "web": tree_rss_kib(web_pid)}

        def text(n: int) -> None:
            try:
                got = stack.text(f"+1415666{n % CONVERSATIONS:04d}", f"soak {n}",
                                 conversation_sid=convs[n % CONVERSATIONS])  # fmt: skip
                if got["webhook_status"] != 200:
                    errors.append(str(got))
                sent.append(got)
            except Exception as exc:
                errors.append(repr(exc))

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            n = 0
            while time.monotonic() - started < SECONDS - 40:
                pool.submit(text, n)
                n += 1
                time.sleep(max(0.0, started + n / TEXTS_PER_SECOND - time.monotonic()))
        caller.join(SECONDS + 120)
        end_rss = {"relay": rss_kib(relay_pid), "web": tree_rss_kib(web_pid)}

        assert calls, "the call load did not finish"
        load = calls[0]
        assert load.errors == [] and load.lost == 0 and load.opened == CALLS, load
        assert errors == [], errors[:5]
        want = {s["message_sid"] for s in sent}

        wait_for(lambda: want <= set(stack.reply_counts()), timeout=600, interval=2.0)
        assert all(v == 1 for v in stack.reply_counts().values())
        for name in ("relay", "web"):
            growth = (end_rss[name] - base_rss[name]) / base_rss[name]
            print(f"{name} RSS {base_rss[name]} KiB -> {end_rss[name]} KiB ({growth:+.1%})")
            assert growth < 0.10, (name, base_rss[name], end_rss[name])
        print(f"calls: {load}")
        print(f"texts: {len(sent)} sent, all answered once")
    finally:
        stack.stop()
