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

import base64
import os
import secrets
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.relay_load import Target, run_load, wait_http
from tests.conftest import REDIS_URL
from tests.sms.stack import Stack
from tests.support import PYTHON, ROOT, base_env, free_port, wait_for, wait_port

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
    total = rss_kib(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                total += rss_kib(int(entry.name))
    return total


def test_hundred_calls_and_fifty_texts_a_second(tmp_path: Path) -> None:
    key, sim_port, relay_port = secrets.token_bytes(32), free_port(), free_port()
    auth_token, relay_url = secrets.token_hex(16), f"ws://127.0.0.1:{relay_port}"
    env = base_env({"LOG_LEVEL": "WARNING"})
    sim = subprocess.Popen(
        [PYTHON, "-m", "bench.echo_upstream", "--port", str(sim_port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL)  # fmt: skip
    relay = subprocess.Popen(
        [PYTHON, "-m", "relay", "--port", str(relay_port)], cwd=ROOT,
        env={**env, "OPENAI_API_KEY": "sk-soak", "ENCRYPTION_KEY": base64.b64encode(key).decode(),
             "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{sim_port}/v1/realtime",
             "REDIS_URL": REDIS_URL, "SESSION_TIME_LIMIT_SECONDS": "3600",
             # streams are signed like Twilio's, over RELAY_PUBLIC_URL + path
             "TWILIO_AUTH_TOKEN": auth_token, "RELAY_PUBLIC_URL": relay_url})  # fmt: skip
    stack = Stack(tmp_path, REDIS_URL, env={"LOG_LEVEL": "WARNING"}, worker_concurrency=4)
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/healthz")
        wait_port(relay_port)
        stack.start()
        template = f"{relay_url}/token/{{token}}"
        target = Target(
            template, key, relay.pid, sim_port, sim.pid, twilio_auth_token=auth_token,
            relay_public_url=relay_url,
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
        web_pid = stack.procs["web"].popen.pid
        time.sleep(20)  # warm-up: sessions open, caches and pools filled
        base_rss = {"relay": rss_kib(relay.pid), "web": tree_rss_kib(web_pid)}

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
        end_rss = {"relay": rss_kib(relay.pid), "web": tree_rss_kib(web_pid)}

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
        for proc in (relay, sim):
            proc.terminate()
            proc.wait(10)
