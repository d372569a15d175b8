"""Relay load benchmark: N simulated Twilio calls through a Media Streams relay to an echoing
Realtime endpoint, with timestamps carried inside the audio.

    python -m bench.relay_load --calls 20 --seconds 20
    python -m bench.relay_load --sweep 10,20,50,100,150,200 --seconds 20
    python -m bench.relay_load --calls 20 --barge-in 200
    python -m bench.relay_load --relay-url 'ws://127.0.0.1:5050/media-stream' --relay-pid 1234 \\
        --upstream-port 5599          # another relay, pointed at ws://127.0.0.1:5599/v1/realtime

Processes, all separate (the machine's cores are shared, as in production sizing):

* the relay (started here as ``python -m relay`` unless ``--relay-url`` names another one);
* the echo upstream (:mod:`bench.echo_upstream`), which the relay takes for OpenAI: every
  ``input_audio_buffer.append`` comes straight back as one ``response.output_audio.delta``;
* one or more load generators (:mod:`bench.load_generator`; ``--generators``, by default one
  per 50 calls, at least 2 from 50 calls), each running its share of the calls on raw
  asyncio protocols.

Each call opens the stream (subprotocol ``audio``; ``connected`` and ``start`` with
``customParameters.direction=inbound``), sends 50 ``media`` frames a second paced on the
clock (phases spread over the 20 ms), echoes every ``mark`` at once as Twilio does once audio
has played, and reads the relay's ``media``. Every frame's 160 μ-law bytes start with a stamp:
magic, call, sequence number, generator send time; the echo upstream adds its receive and send
times. All processes read the same ``CLOCK_MONOTONIC`` (one clock per Linux machine; the bench
checks it at start by bracketing each generator's clock between two of its own readings), so

* inbound hop = upstream receive − generator send (generator → relay → upstream),
* outbound hop = generator receive − upstream send (upstream → relay → generator).

Receive times are read once per received chunk, before any parsing. Only frames sent during the
steady window (after ``--warmup``) count for latency; every frame counts for loss (sent −
distinct frames echoed back). Relay CPU is utime + stime of the relay and its descendants from
``/proc`` over the steady window, per call-minute.

``--barge-in ROUNDS`` adds one more call, in its own process, during the steady window: it
never echoes marks (so audio is always unplayed), sends 200 ms of audio, then a frame with the
barge-in magic; the upstream answers ``input_audio_buffer.speech_started`` and reports when it
wrote it; the call measures until the relay's ``clear`` arrives.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# == orchestration ==============================================================================
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def wait_port(port: int, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu(pid: int) -> float:
    """utime + stime of ``pid`` and every live descendant (threads are included in a
    process's figures; reaped children in its cutime/cstime)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                children.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            f = _stat(p)
        except OSError:
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        todo.extend(children.get(p, []))
    return total / tick


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


def pct(values: list, q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spawn_generator(spec: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.load_generator"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
        bufsize=1,
    )
    proc.stdin.write(json.dumps(spec) + "\n")
    return proc


def clock_check(proc: subprocess.Popen, rounds: int = 50) -> tuple[int, int]:
    """Bracket the child's CLOCK_MONOTONIC between two readings of ours, ``rounds`` times.
    Returns (violations, narrowest bracket in ns): 0 violations means one shared clock."""
    bad, best = 0, 1 << 62
    for _ in range(rounds):
        before = time.monotonic_ns()
        proc.stdin.write("clock\n")
        theirs = int(proc.stdout.readline())
        after = time.monotonic_ns()
        bad += not (before <= theirs <= after)
        best = min(best, after - before)
    return bad, best


def profile(path: str, pid: int, seconds: float) -> subprocess.Popen:
    """py-spy on the relay for the steady window (``.svg`` flame graph, ``.json`` speedscope,
    anything else collapsed stacks). ``--nonblocking``: the relay is never paused to sample."""
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(Path(path).suffix, "raw")
    spy = Path(sys.executable).with_name("py-spy")
    cmd = [str(spy), "record", "-p", str(pid), "-o", path, "-f", fmt, "-d", str(int(seconds))]
    return subprocess.Popen([*cmd, "-r", "200", "--nonblocking"], stdout=subprocess.DEVNULL)


def upstream_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as resp:
        return json.loads(resp.read())


def run_load(args: argparse.Namespace, calls: int, ctx: dict) -> dict:
    from common import tokens

    def url() -> str:
        template = ctx["template"]
        return (
            template.replace("{token}", tokens.mint(ctx["key"], "twilio", 600))
            if ctx["key"]
            else template
        )

    gens = args.generators or (1 if calls < 50 else max(2, -(-calls // 50)))
    gens = max(1, min(gens, calls))
    specs = [
        {"role": "load", "total_calls": calls, "calls": [(i, url()) for i in range(g, calls, gens)]}
        for g in range(gens)
    ]
    if args.barge_in:
        specs.append(
            {"role": "barge", "total_calls": 1, "calls": [(calls, url())], "rounds": args.barge_in}
        )
    up0 = upstream_stats(ctx["upstream_port"])
    procs = [spawn_generator(s) for s in specs]
    clock = [clock_check(p) for p in procs]
    for p in procs:
        p.stdin.write("connect\n")
    ready = [json.loads(p.stdout.readline()) for p in procs]
    opened = sum(r["ready"] for r in ready)

    warm_ns, window_ns = int(args.warmup * 1e9), int(args.seconds * 1e9)
    t_start = time.monotonic_ns() + 300_000_000
    for p in procs:
        p.stdin.write(
            json.dumps({"t_start": t_start, "warmup_ns": warm_ns, "window_ns": window_ns}) + "\n"
        )
        p.stdin.flush()
    pid, up_port = ctx["pid"], ctx["upstream_port"]
    watched = {"relay": pid, "upstream": ctx.get("upstream_pid")} | {
        f"gen{i}": p.pid for i, p in enumerate(procs)
    }
    time.sleep(max(0, t_start + warm_ns - time.monotonic_ns()) / 1e9)
    spy = profile(args.py_spy, pid, args.seconds) if args.py_spy and pid else None
    cpu0 = {k: tree_cpu(v) for k, v in watched.items() if v}
    busy0 = machine_busy()
    time.sleep(max(0, t_start + warm_ns + window_ns - time.monotonic_ns()) / 1e9)
    cpu1 = {k: tree_cpu(v) for k, v in watched.items() if v}
    busy1 = machine_busy()
    results = [json.loads(p.stdout.readline() or "{}") for p in procs]
    for p in procs:
        p.wait(30)
    up1 = upstream_stats(up_port)
    if spy is not None:
        spy.wait(30)

    load = [r for r, s in zip(results, specs, strict=True) if s["role"] == "load"]
    lat_in = [x for r in load for x in r["lat_in_us"]]
    lat_out = [x for r in load for x in r["lat_out_us"]]
    late = [x for r in load for x in r["lateness_us"]]
    sent = sum(r["sent"] for r in load)
    received = sum(r["received"] for r in load)
    window_s = args.seconds
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu1}
    barge = [x for r in results for x in r.get("barge_ms", [])]
    return {
        "calls": calls,
        "opened": opened,
        "generators": gens,
        "in_p50": pct(lat_in, 0.5) / 1000,
        "in_p99": pct(lat_in, 0.99) / 1000,
        "in_max": max(lat_in, default=0) / 1000,
        "out_p50": pct(lat_out, 0.5) / 1000,
        "out_p99": pct(lat_out, 0.99) / 1000,
        "out_max": max(lat_out, default=0) / 1000,
        "samples": len(lat_in),
        "sent": sent,
        "lost": sent - received,
        "lost_inbound": sent - (up1["stamped"] - up0["stamped"]),
        "lost_outbound": (up1["stamped"] - up0["stamped"]) - received,
        "duplicates": sum(r["duplicates"] for r in load),
        "errors": [e for r in results for e in r.get("errors", [])],
        "cpu_per_call_minute": cpu.get("relay", float("nan")) / (calls * window_s / 60),
        "relay_cpu_pct": 100 * cpu.get("relay", float("nan")) / window_s,
        "upstream_cpu_pct": 100 * cpu.get("upstream", float("nan")) / window_s,
        "gen_cpu_pct": max(100 * cpu[k] / window_s for k in cpu if k.startswith("gen")),
        "machine_busy_pct": 100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
        "lateness_p99": pct(late, 0.99) / 1000,
        "clock_violations": sum(c[0] for c in clock),
        "clock_bracket_us": min(c[1] for c in clock) / 1000,
        "barge_ms": barge,
        "barge_missed": sum(r.get("barge_missed", 0) for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relay_load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--sweep", help="comma-separated call counts, e.g. 10,20,50,100,150")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady window per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window")
    parser.add_argument("--generators", type=int, default=0, help="0: one per 50 calls")
    parser.add_argument("--relay-url", help="another relay; {token} becomes a twilio token")
    parser.add_argument("--relay-pid", type=int, help="that relay's pid, to read its CPU time")
    parser.add_argument("--encryption-key", help="base64 key for {token} with --relay-url")
    parser.add_argument("--upstream-port", type=int, help="port for the echo upstream")
    parser.add_argument("--delta-type", default="response.output_audio.delta")
    parser.add_argument("--barge-in", type=int, default=0, metavar="ROUNDS")
    parser.add_argument("--json", help="also write every run's figures to this file")
    parser.add_argument("--py-spy", metavar="PATH", help="profile the relay during the window")
    args = parser.parse_args(argv)

    procs: list[subprocess.Popen] = []
    env = {**os.environ, "GATEFRAMES_DOTENV": "0", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    up_port = args.upstream_port or free_port()
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.echo_upstream",
                    "--port",
                    str(up_port),
                    "--delta-type",
                    args.delta_type,
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        )
        ctx: dict = {"upstream_port": up_port, "upstream_pid": procs[-1].pid}
        if args.relay_url:
            key = base64.b64decode(args.encryption_key) if args.encryption_key else None
            ctx |= {"template": args.relay_url, "pid": args.relay_pid, "key": key}
        else:
            key, relay_port = secrets.token_bytes(32), free_port()
            relay_env = {
                **env,
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{up_port}/v1/realtime",
                "ENCRYPTION_KEY": base64.b64encode(key).decode(),
                "REDIS_URL": "redis://127.0.0.1:6379/14",
                "SESSION_TIME_LIMIT_SECONDS": "3600",
            }
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "relay",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(relay_port),
                    ],
                    cwd=ROOT,
                    env=relay_env,
                )
            )
            wait_port(relay_port)
            ctx |= {
                "template": f"ws://127.0.0.1:{relay_port}/token/{{token}}",
                "pid": procs[-1].pid,
                "key": key,
            }
        wait_http(f"http://127.0.0.1:{up_port}/healthz")
        print(
            f"upstream ws://127.0.0.1:{up_port}/v1/realtime  "
            f"relay {ctx['template']} (pid {ctx['pid']})"
        )
        counts = [int(c) for c in args.sweep.split(",")] if args.sweep else [args.calls]
        print(
            f"{'calls':>5} {'in p50':>7} {'in p99':>7} {'out p50':>8} {'out p99':>8} "
            f"{'lost':>5} {'err':>4} {'CPU s/call-min':>14} {'relay%':>7} {'up%':>5} "
            f"{'gen%':>5} {'box%':>5} {'late99':>7}",
            flush=True,
        )
        best, runs = None, []
        for n in counts:
            r = run_load(args, n, ctx)
            runs.append(r)
            print(
                f"{n:>5} {r['in_p50']:>7.2f} {r['in_p99']:>7.2f} {r['out_p50']:>8.2f} "
                f"{r['out_p99']:>8.2f} {r['lost']:>5} {len(r['errors']):>4} "
                f"{r['cpu_per_call_minute']:>14.3f} {r['relay_cpu_pct']:>7.1f} "
                f"{r['upstream_cpu_pct']:>5.1f} {r['gen_cpu_pct']:>5.1f} "
                f"{r['machine_busy_pct']:>5.1f} {r['lateness_p99']:>7.2f}",
                flush=True,
            )
            for e in r["errors"][:5]:
                print("   ", e, file=sys.stderr)
            if r["clock_violations"]:
                print(f"    WARNING: {r['clock_violations']} clock bracket violations")
            if r["barge_ms"] or r["barge_missed"]:
                lat = r["barge_ms"]
                print(
                    f"    barge-in (speech_started sent -> clear received), {len(lat)} rounds, "
                    f"{r['barge_missed']} missed: p50 {pct(lat, 0.5):.2f} ms  "
                    f"p99 {pct(lat, 0.99):.2f} ms  max {max(lat, default=float('nan')):.2f} ms",
                    flush=True,
                )
            ok = max(r["in_p99"], r["out_p99"]) < 20 and r["lost"] == 0 and not r["errors"]
            if ok:
                best = n
            elif args.sweep:
                break
        clock = runs[0]
        print(
            f"clock: CLOCK_MONOTONIC shared ({clock['clock_violations']} violations; "
            f"child readings bracketed within {clock['clock_bracket_us']:.0f} µs)"
        )
        if args.sweep:
            print(f"largest N with one-hop p99 < 20 ms and no loss: {best}")
        if args.json:
            Path(args.json).write_text(json.dumps(runs, indent=1))
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
