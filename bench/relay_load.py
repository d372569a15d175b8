"""Relay load benchmark: N simulated Twilio calls through a Media Streams relay to an echoing
Realtime endpoint, with timestamps carried inside the audio.

    python -m bench.relay_load --calls 20 --seconds 20
    python -m bench.relay_load --sweep 10,20,50,100,150,200 --seconds 20
    python -m bench.relay_load --calls 20 --barge-in 200
    python -m bench.relay_load --calls 20 --seconds 15 --engine live   # calls on GPT-Live
    python -m bench.relay_load --calls 20 --seconds 15 --paced --whole-run [--echo-marks 5]
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

``--paced``: the upstream sends a 20 ms delta every 20 ms per call on its own clock instead of
echoing each append at once (the shape OpenAI produces). ``--whole-run``: latency and CPU from
before the first connect to the end of the media, setup included; CPU per call-minute is all
of it over calls x ``--seconds``. The relay's setup CPU per call (connect until every call's
upstream is open) is printed either way. ``--echo-marks N``: phones echo one mark in N.

As Twilio's, each stream's token names its CallSid (sent again in ``start``), and when the
:class:`Target` knows the relay's ``TWILIO_AUTH_TOKEN`` and ``RELAY_PUBLIC_URL`` (the local
stack sets both) every upgrade carries a valid ``X-Twilio-Signature``.

From Python (the soak does): ``run_load(Target(...), calls, seconds, ...)`` returns a
:class:`LoadResult`; :func:`local_stack` starts an echo upstream and a relay for it.

``--barge-in ROUNDS`` adds one more call, in its own process, during the steady window: it
never echoes marks (so audio is always unplayed), sends 200 ms of audio, then a frame with the
barge-in magic; the upstream answers ``input_audio_buffer.speech_started`` and reports when it
wrote it; the call measures until the relay's ``clear`` arrives.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.procs import (
    ROOT,
    Target,
    free_port,
    local_stack,
    machine_busy,
    pct,
    profile,
    tree_cpu,
    upstream_stats,
    wait_http,
    wait_port,
)

# Re-exported: the soak and other benches import these from here.
__all__ = [
    "LoadResult",
    "Target",
    "free_port",
    "local_stack",
    "run_load",
    "tree_cpu",
    "wait_http",
    "wait_port",
]


# == orchestration ==============================================================================
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


@dataclass
class LoadResult:
    calls: int
    opened: int
    generators: int
    seconds: float  #: media seconds per call
    in_p50: float  # ms, one hop each way
    in_p99: float
    in_max: float
    out_p50: float
    out_p99: float
    out_max: float
    samples: int
    sent: int
    lost: int
    lost_inbound: int
    lost_outbound: int
    duplicates: int
    errors: list[str]
    cpu_per_call_minute: float  #: relay CPU over the measured span / call-minutes of media
    setup_cpu_per_call: float  #: relay CPU from connect to every call ready, per call (s)
    relay_cpu_pct: float
    upstream_cpu_pct: float
    gen_cpu_pct: float
    machine_busy_pct: float
    lateness_p99: float
    clock_violations: int
    clock_bracket_us: float
    barge_ms: list[float] = field(default_factory=list)
    barge_missed: int = 0
    whole_run: bool = False


def run_load(
    target: Target,
    calls: int,
    seconds: float,
    *,
    warmup: float = 2.0,
    generators: int = 0,
    barge_in: int = 0,
    echo_marks: int = 1,
    whole_run: bool = False,
    py_spy: str | None = None,
) -> LoadResult:
    """``calls`` simulated Twilio calls for ``seconds`` of media each, through ``target``.

    By default latency and CPU cover the steady window after ``warmup``. ``whole_run``
    measures from before the first connect to the end of the media instead (setup included;
    CPU per call-minute = all of it / (calls x seconds)). ``echo_marks``: the phones echo one
    mark in N (1 as Twilio does; 0 never).
    """
    from common import tokens

    def call(idx: int) -> tuple[int, str, str]:
        """(index, stream URL, CallSid): the token names the call, as the relay requires."""
        sid = "CA" + secrets.token_hex(16)
        if not target.key:
            return idx, target.template, sid
        token = tokens.mint(target.key, "twilio", 600, call_sid=sid)
        return idx, target.template.replace("{token}", token), sid

    gens = generators or (1 if calls < 50 else max(2, -(-calls // 50)))
    gens = max(1, min(gens, calls))
    specs = [
        {
            "role": "load",
            "total_calls": calls,
            "echo_marks": echo_marks,
            "auth_token": target.twilio_auth_token,
            "public_url": target.relay_public_url,
            "calls": [call(i) for i in range(g, calls, gens)],
        }
        for g in range(gens)
    ]
    if barge_in:
        specs.append(
            {
                "role": "barge",
                "total_calls": 1,
                "calls": [call(calls)],
                "rounds": barge_in,
                "auth_token": target.twilio_auth_token,
                "public_url": target.relay_public_url,
            }
        )
    if whole_run:
        warmup = 0.0
    up0 = upstream_stats(target.upstream_port)
    procs = [spawn_generator(s) for s in specs]
    clock = [clock_check(p) for p in procs]
    watched = {"relay": target.relay_pid, "upstream": target.upstream_pid} | {
        f"gen{i}": p.pid for i, p in enumerate(procs)
    }
    relay_before_connect = tree_cpu(target.relay_pid) if target.relay_pid else float("nan")
    for p in procs:
        p.stdin.write("connect\n")
        p.stdin.flush()
    ready = [json.loads(p.stdout.readline()) for p in procs]
    opened = sum(r["ready"] for r in ready)
    # Setup ends when the relay has opened every call's upstream (and sent its session).
    deadline = time.monotonic() + 10
    while upstream_stats(target.upstream_port)["connections"] - up0["connections"] < opened:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    relay_ready = tree_cpu(target.relay_pid) if target.relay_pid else float("nan")

    warm_ns, window_ns = int(warmup * 1e9), int(seconds * 1e9)
    t_start = time.monotonic_ns() + 300_000_000
    for p in procs:
        go = {"t_start": t_start, "warmup_ns": warm_ns, "window_ns": window_ns}
        p.stdin.write(json.dumps(go) + "\n")
        p.stdin.flush()
    if whole_run:
        cpu0 = {k: tree_cpu(v) for k, v in watched.items() if v}
        cpu0["relay"] = relay_before_connect
        busy0 = machine_busy()
        started = time.monotonic_ns()
    time.sleep(max(0, t_start + warm_ns - time.monotonic_ns()) / 1e9)
    spy = profile(py_spy, target.relay_pid, seconds) if py_spy and target.relay_pid else None
    if not whole_run:
        cpu0 = {k: tree_cpu(v) for k, v in watched.items() if v}
        busy0 = machine_busy()
        started = time.monotonic_ns()
    time.sleep(max(0, t_start + warm_ns + window_ns - time.monotonic_ns()) / 1e9)
    cpu1 = {k: tree_cpu(v) for k, v in watched.items() if v}
    busy1 = machine_busy()
    span_s = (time.monotonic_ns() - started) / 1e9
    results = [json.loads(p.stdout.readline() or "{}") for p in procs]
    for p in procs:
        p.wait(30)
    up1 = upstream_stats(target.upstream_port)
    if spy is not None:
        spy.wait(30)

    load = [r for r, s in zip(results, specs, strict=True) if s["role"] == "load"]
    lat_in = [x for r in load for x in r["lat_in_us"]]
    lat_out = [x for r in load for x in r["lat_out_us"]]
    late = [x for r in load for x in r["lateness_us"]]
    sent = sum(r["sent"] for r in load)
    received = sum(r["received"] for r in load)
    stamped = up1["stamped"] - up0["stamped"]
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu1}
    relay_cpu = cpu.get("relay", float("nan"))
    return LoadResult(
        calls=calls,
        opened=opened,
        generators=gens,
        seconds=seconds,
        in_p50=pct(lat_in, 0.5) / 1000,
        in_p99=pct(lat_in, 0.99) / 1000,
        in_max=max(lat_in, default=0) / 1000,
        out_p50=pct(lat_out, 0.5) / 1000,
        out_p99=pct(lat_out, 0.99) / 1000,
        out_max=max(lat_out, default=0) / 1000,
        samples=len(lat_in),
        sent=sent,
        lost=sent - received,
        lost_inbound=sent - stamped,
        lost_outbound=stamped - received,
        duplicates=sum(r["duplicates"] for r in load),
        errors=[e for r in results for e in r.get("errors", [])],
        cpu_per_call_minute=relay_cpu / (calls * seconds / 60),
        setup_cpu_per_call=(relay_ready - relay_before_connect) / max(1, opened),
        relay_cpu_pct=100 * relay_cpu / span_s,
        upstream_cpu_pct=100 * cpu.get("upstream", float("nan")) / span_s,
        gen_cpu_pct=max(100 * cpu[k] / span_s for k in cpu if k.startswith("gen")),
        machine_busy_pct=100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
        lateness_p99=pct(late, 0.99) / 1000,
        clock_violations=sum(c[0] for c in clock),
        clock_bracket_us=min(c[1] for c in clock) / 1000,
        barge_ms=[x for r in results for x in r.get("barge_ms", [])],
        barge_missed=sum(r.get("barge_missed", 0) for r in results),
        whole_run=whole_run,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relay_load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--sweep", help="comma-separated call counts, e.g. 10,20,50,100,150")
    parser.add_argument("--seconds", type=float, default=20.0, help="media seconds per call")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window")
    parser.add_argument("--generators", type=int, default=0, help="0: one per 50 calls")
    parser.add_argument("--relay-url", help="another relay; {token} becomes a twilio token")
    parser.add_argument("--relay-pid", type=int, help="that relay's pid, to read its CPU time")
    parser.add_argument("--encryption-key", help="base64 key for {token} with --relay-url")
    parser.add_argument("--upstream-port", type=int, help="port for the echo upstream")
    parser.add_argument("--delta-type", default="response.output_audio.delta")
    parser.add_argument(
        "--paced", action="store_true",
        help="the upstream sends a 20 ms delta every 20 ms per call on its own clock",
    )  # fmt: skip
    parser.add_argument(
        "--whole-run", action="store_true",
        help="measure from before the first connect (setup included), not a steady window",
    )  # fmt: skip
    parser.add_argument(
        "--echo-marks", type=int, default=1, metavar="N",
        help="phones echo one mark in N (1: all, as Twilio; 0: none)",
    )  # fmt: skip
    parser.add_argument("--barge-in", type=int, default=0, metavar="ROUNDS")
    parser.add_argument(
        "--engine",
        choices=("realtime", "live"),
        default="realtime",
        help="the relay's VOICE_ENGINE for the calls (live: GPT-Live, no barge-in rounds)",
    )
    parser.add_argument("--json", help="also write every run's figures to this file")
    parser.add_argument("--py-spy", metavar="PATH", help="profile the relay during the window")
    args = parser.parse_args(argv)

    key = base64.b64decode(args.encryption_key) if args.encryption_key else None
    if args.engine == "live" and args.barge_in:
        parser.error("--barge-in needs the realtime engine (GPT-Live has no speech_started)")
    with local_stack(
        20 if args.paced else 0, args.delta_type, args.upstream_port, args.relay_url,
        args.relay_pid, key, engine=args.engine,
    ) as target:  # fmt: skip
        path = "/v1/live/sessions" if args.engine == "live" else "/v1/realtime"
        print(
            f"engine {args.engine}: upstream ws://127.0.0.1:{target.upstream_port}{path} "
            f"({'paced 20 ms deltas' if args.paced else 'echo'})  "
            f"relay {target.template} (pid {target.relay_pid}); "
            f"{'whole run, setup included' if args.whole_run else 'steady window'}"
        )
        counts = [int(c) for c in args.sweep.split(",")] if args.sweep else [args.calls]
        print(
            f"{'calls':>5} {'in p50':>7} {'in p99':>7} {'out p50':>8} {'out p99':>8} "
            f"{'lost':>5} {'err':>4} {'CPU s/call-min':>14} {'setup/call':>10} {'relay%':>7} "
            f"{'up%':>5} {'gen%':>5} {'box%':>5} {'late99':>7}",
            flush=True,
        )
        best, runs = None, []
        for n in counts:
            r = run_load(
                target, n, args.seconds, warmup=args.warmup, generators=args.generators,
                barge_in=args.barge_in, echo_marks=args.echo_marks, whole_run=args.whole_run,
                py_spy=args.py_spy,
            )  # fmt: skip
            runs.append(r)
            print(
                f"{n:>5} {r.in_p50:>7.2f} {r.in_p99:>7.2f} {r.out_p50:>8.2f} {r.out_p99:>8.2f} "
                f"{r.lost:>5} {len(r.errors):>4} {r.cpu_per_call_minute:>14.3f} "
                f"{1000 * r.setup_cpu_per_call:>8.1f}ms {r.relay_cpu_pct:>7.1f} "
                f"{r.upstream_cpu_pct:>5.1f} {r.gen_cpu_pct:>5.1f} {r.machine_busy_pct:>5.1f} "
                f"{r.lateness_p99:>7.2f}",
                flush=True,
            )
            for e in r.errors[:5]:
                print("   ", e, file=sys.stderr)
            if r.clock_violations:
                print(f"    WARNING: {r.clock_violations} clock bracket violations")
            if r.barge_ms or r.barge_missed:
                lat = r.barge_ms
                print(
                    f"    barge-in (speech_started sent -> clear received), {len(lat)} rounds, "
                    f"{r.barge_missed} missed: p50 {pct(lat, 0.5):.2f} ms  "
                    f"p99 {pct(lat, 0.99):.2f} ms  max {max(lat, default=float('nan')):.2f} ms",
                    flush=True,
                )
            if max(r.in_p99, r.out_p99) < 20 and r.lost == 0 and not r.errors:
                best = n
            elif args.sweep:
                break
        clock = runs[0]
        print(
            f"clock: CLOCK_MONOTONIC shared ({clock.clock_violations} violations; "
            f"child readings bracketed within {clock.clock_bracket_us:.0f} µs)"
        )
        if args.sweep:
            print(f"largest N with one-hop p99 < 20 ms and no loss: {best}")
        if args.json:
            Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
