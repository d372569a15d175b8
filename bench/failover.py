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

Everything runs locally as real processes (tests/voice/stack.py); Redis must answer at
REDIS_URL (default redis://127.0.0.1:6379/<GATEFRAMES_TEST_REDIS_DB or 13>, flushed first).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

from sandbox import phone
from tests.support import TEST_REDIS_DB, wait_for, wait_port
from tests.voice.probes import Listener, longest_silence
from tests.voice.stack import VoiceStack


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
        call.phone.start_line()
        wait_for(lambda: (s := stack.sessions()) and s[0]["responses"], 20)
        wait_for(lambda: stack.sessions()[0]["responses"][0]["status"] == "completed", 20)
        call.phone.say(phone.tone(800))
        wait_for(
            lambda: (
                len(r := stack.sessions()[0]["responses"]) >= 2 and r[1]["audio_ms_sent"] >= 600
            ),
            20,
        )
        dropped_at = time.monotonic()
        stack.realtime_fault(drop_now=1)
        before = len(call.phone.heard)
        wait_for(lambda c=call, b=before: len(c.phone.heard) > b + 8 * 1500, 20)
        gaps.append(longest_silence(call.phone.heard_log, dropped_at))
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
        stack.procs[old].popen.send_signal(signal.SIGTERM)
        for c in batch:
            wait_for(lambda c=c: len(s := c.log()["streams"]) == 2 and s[1]["heard_ms"] > 300, 30)
        stack.procs[old].popen.wait(30)
        for listener in listeners:
            listener.stop()
        gaps += [listener.gap() for listener in listeners]
        for c in batch:
            c.hang_up()
        # Start the stopped relay again on its port: the next round drains the other one.
        port = stack.relay_ports[0 if old == "relay" else 1]
        stack.procs[old] = stack._proc(old, "relay", port, env=stack.relay_env)
        wait_port(port, proc=stack.procs[old].popen)
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
    stack = VoiceStack(Path(tempfile.mkdtemp(prefix="failover-")), url, relays=2)
    stack.start(realtime_speed=1.0)
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
