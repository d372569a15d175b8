"""``python -m bench.failover [--calls N] [--per-restart K]``: the silence a caller hears when a
call survives a failure, over N calls of each kind, as p50/p99.

* **drop**: OpenAI Realtime (the simulator) drops every socket mid-answer (``drop_now``); the
  relay reconnects and replays. Measured on the phone's own playback clock: the longest
  stretch without new audio from the drop until the assistant is heard again.
* **handover**: the relay holding K live calls gets SIGTERM; each call is redirected through
  the Twilio simulator's Calls API to the other relay (behind a router, as on a PaaS). Measured
  by polling the simulator's call log every 20 ms: from the last audio heard on the old stream
  to the first on the new one (so ±20 ms). The stopped relay is started again for the next
  round, and the roles swap.

Everything runs locally as real processes (tests/voice/stack.py, on :mod:`sandbox.stack`);
Redis must answer at REDIS_URL (default redis://127.0.0.1:6379/<GATEFRAMES_TEST_REDIS_DB or
13>, flushed first). ``tests/voice/test_failover.py`` measures its callers' silence with the
functions here, so the test and the figures mean the same thing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis

from sandbox import dial, phone
from tests.support import TEST_REDIS_DB, wait_for
from tests.voice.stack import Call, VoiceStack


# ==== what the caller heard ====================================================================
def longest_silence(heard_log: list[tuple[float, int]], since: float) -> float:
    """The longest stretch without new audio that reaches past ``since`` (seconds)."""
    times = [t for t, _ in heard_log]
    return max((b - a for a, b in itertools.pairwise(times) if b >= since), default=0.0)


def drop_mid_answer(stack: VoiceStack, call: Call) -> float:
    """Let the greeting finish, speak, and drop OpenAI's socket once 600 ms of the answer are
    out (so the answer is still being generated and heard); the ``monotonic()`` of the drop."""
    call.phone.start_line()
    wait_for(lambda: (s := stack.sessions()) and s[0]["responses"], 20)
    wait_for(lambda: stack.sessions()[0]["responses"][0]["status"] == "completed", 20)
    call.phone.say(phone.tone(800))
    wait_for(
        lambda: len(r := stack.sessions()[0]["responses"]) >= 2 and r[1]["audio_ms_sent"] >= 600,
        20,
    )
    dropped_at = time.monotonic()
    stack.realtime_fault(drop_now=1)
    return dropped_at


def silence_after(call: Call, since: float, then_heard_ms: float) -> float:
    """Once the caller has heard ``then_heard_ms`` more audio: the longest silence heard on
    the phone's own playback clock that reaches past ``since`` (seconds)."""
    before = len(call.phone.heard)
    wait_for(lambda: len(call.phone.heard) > before + then_heard_ms * phone.BYTES_PER_MS, 20)
    return longest_silence(call.phone.heard_log, since)


def draining_health(port: int) -> dict | None:
    """A relay's /healthz body while it answers 503 (draining), else None."""
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except urllib.error.HTTPError as exc:
        if exc.code == 503:
            return json.loads(exc.read())
    except OSError:
        pass
    return None


class Listener:
    """Polls the Twilio simulator's call log every 20 ms: when each stream's heard audio grew."""

    def __init__(self, call: dial.SimCall):
        self.call = call
        self.samples: list[tuple[float, list[int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            streams = self.call.log()["streams"]
            self.samples.append((time.monotonic(), [s["heard_ms"] for s in streams]))
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def gap(self) -> float:
        """From the last growth of the first stream's audio to the first of the second's."""
        final = max(h[0] for _, h in self.samples if h)
        last_old = min(t for t, h in self.samples if h and h[0] == final)
        first_new = min(t for t, h in self.samples if len(h) > 1 and h[1] > 0)
        return first_new - last_old


# ==== the benchmark ============================================================================


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, gaps: list[float]) -> str:
    ms = [g * 1000 for g in gaps]
    return (
        f"{name:9s} n={len(ms):3d}  p50={pct(ms, 0.5):6.0f} ms  p99={pct(ms, 0.99):6.0f} ms  "
        f"mean={statistics.fmean(ms):6.0f} ms  max={max(ms):6.0f} ms"
    )


def drops(stack: VoiceStack, calls: int) -> list[float]:
    gaps = []
    for _ in range(calls):
        stack.realtime_reset()
        call = stack.place_call(speed=1)
        dropped_at = drop_mid_answer(stack, call)
        gaps.append(silence_after(call, dropped_at, then_heard_ms=1500))
        call.phone.hang_up()
        call.phone.wait_closed(10)
    return gaps


def handovers(stack: VoiceStack, calls: int, per_restart: int) -> list[float]:
    assert stack.router is not None
    names = ["relay", "relay2"]
    gaps: list[float] = []
    while len(gaps) < calls:
        stack.realtime_reset()
        batch = [stack.call_in() for _ in range(min(per_restart, calls - len(gaps)))]
        wait_for(
            lambda b=batch: (
                all(
                    s["responses"] and s["responses"][0]["status"] == "completed"
                    for s in stack.sessions()
                )
                and len(stack.sessions()) == len(b)
            ),
            30,
        )
        for c in batch:
            c.speak(800)
        wait_for(
            lambda: all(
                len(s["responses"]) >= 2 and s["responses"][1]["audio_ms_sent"] >= 600
                for s in stack.sessions()
            ),
            20,
        )
        listeners = [Listener(c) for c in batch]
        old, new = names
        stack.router.target = stack.relay_ports[1 if old == "relay" else 0]
        stack.terminate(old)
        for c in batch:
            wait_for(lambda c=c: len(s := c.log()["streams"]) == 2 and s[1]["heard_ms"] > 300, 30)
        stack.wait_exit(old, 30)
        for listener in listeners:
            listener.stop()
        gaps += [listener.gap() for listener in listeners]
        for c in batch:
            c.hang_up()
        # Start the stopped relay again on its port: the next round drains the other one.
        stack.restart(old)
        names = [new, old]
    return gaps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    parser.add_argument("--calls", type=int, default=12, help="calls per failover kind")
    parser.add_argument("--per-restart", type=int, default=3, help="live calls per SIGTERM")
    parser.add_argument("--kind", choices=("drop", "handover", "both"), default="both")
    args = parser.parse_args(argv)
    url = os.environ.get("REDIS_URL", f"redis://127.0.0.1:6379/{TEST_REDIS_DB}")
    redis.Redis.from_url(url).flushdb()
    log_dir = Path(tempfile.mkdtemp(prefix="failover-"))
    stack = VoiceStack(log_dir, url, relays=2, realtime_speed=1.0).start()
    try:
        lines = []
        if args.kind in ("drop", "both"):
            lines.append(summary("drop", drops(stack, args.calls)))
        if args.kind in ("handover", "both"):
            lines.append(summary("handover", handovers(stack, args.calls, args.per_restart)))
    except BaseException:
        print(stack.logs(), file=sys.stderr)
        raise
    finally:
        stack.stop()
    print("silence heard by the caller, per failover:")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
