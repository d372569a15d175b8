"""The Autobahn WebSocket conformance suite against the relay's server-side frame path.

    python -m bench.autobahn                 # cases 1-10 (12.* and 13.* are compression: off)
    python -m bench.autobahn --cases 5.*,6.* # a subset
    python -m bench.autobahn --hub           # the echo reads with start_hub (the call path)

Starts :mod:`bench.autobahn_echo` (the relay's handler and FastWebSocket, echoing) on a free
loopback port, runs ``wstest -m fuzzingclient`` against it and prints each behaviour's count
(OK / NON-STRICT / INFORMATIONAL / UNIMPLEMENTED / FAILED) from the JSON report, then every
case that is not OK or INFORMATIONAL. The full HTML report is in ``var/autobahn/reports``
(``var/autobahn/reports-hub`` with ``--hub``: the echo switches to
:meth:`relay.wire.server_socket.FastWebSocket.start_hub` after the first message, the push path that
Twilio calls use).

``autobahntestsuite`` runs on Python 2.7 only. On first run it is installed with pyenv's 2.7
(``PYENV_VERSION=2.7.18 python -m pip install --target var/autobahn/py27 autobahntestsuite``);
``--python2`` names another interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.relay_load import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / "var" / "autobahn"
SITE = HOME / "py27"
REPORTS = HOME / "reports"
AGENT = "gateframes-relay"
BEHAVIOURS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")


def python2() -> list[str]:
    # ``pyenv exec``, not ``python`` on PATH: in an activated venv that is the venv's Python 3.
    return ["env", "PYENV_VERSION=2.7.18", "pyenv", "exec", "python"]


def install(py2: list[str]) -> None:
    """Install the suite into ``var/autobahn/py27`` once (a marker written last, so an
    install cut short is done again rather than half used)."""
    done = SITE / ".installed"
    if done.exists():
        return
    HOME.mkdir(parents=True, exist_ok=True)
    print(f"installing autobahntestsuite into {SITE} (Python 2.7) ...", flush=True)
    subprocess.run(
        [*py2, "-m", "pip", "install", "--quiet", "--target", str(SITE), "autobahntestsuite"],
        check=True,
    )
    # zope.interface is installed as a namespace package without its __init__; Python 2's
    # import system needs the file.
    (SITE / "zope" / "__init__.py").touch()
    done.touch()


def spec(port: int, cases: list[str], reports: Path = REPORTS) -> dict:
    return {
        "outdir": str(reports),
        "servers": [{"agent": AGENT, "url": f"ws://127.0.0.1:{port}/"}],
        "cases": cases,
        "exclude-cases": ["12.*", "13.*"],
        "exclude-agent-cases": {},
    }


def summarise(index: dict) -> tuple[Counter, list[tuple[str, str, str]]]:
    """Behaviour counts, and the cases that are neither OK nor INFORMATIONAL."""
    counts: Counter = Counter()
    odd = []
    results = index.get(AGENT, {})
    for case in sorted(results, key=lambda c: [int(x) for x in c.split(".")]):
        r = results[case]
        counts[r["behavior"]] += 1
        if r["behavior"] not in ("OK", "INFORMATIONAL") or r["behaviorClose"] not in (
            "OK",
            "INFORMATIONAL",
        ):
            odd.append((case, r["behavior"], r["behaviorClose"]))
    return counts, odd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.autobahn",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cases", default="*", help="comma-separated case patterns")
    parser.add_argument("--python2", help="a Python 2.7 interpreter (default: pyenv's 2.7.18)")
    parser.add_argument(
        "--hub", action="store_true", help="the echo reads from the hub (start_hub) after one"
    )
    args = parser.parse_args(argv)
    reports = REPORTS.with_name("reports-hub") if args.hub else REPORTS
    py2 = [args.python2] if args.python2 else python2()
    install(py2)

    port = free_port()
    env = {**os.environ, "GATEFRAMES_DOTENV": "0", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "ERROR"}
    echo = subprocess.Popen(
        [sys.executable, "-m", "bench.autobahn_echo", "--port", str(port)]
        + (["--hub"] if args.hub else []),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        reports.mkdir(parents=True, exist_ok=True)
        spec_path = HOME / ("fuzzingclient-hub.json" if args.hub else "fuzzingclient.json")
        spec_path.write_text(json.dumps(spec(port, args.cases.split(","), reports), indent=1))
        started = time.monotonic()
        # wstest's own output is one line per case; keep it in a log, print the summary.
        with open(HOME / ("wstest-hub.log" if args.hub else "wstest.log"), "w") as log:
            subprocess.run(
                [*py2, "-c", "from autobahntestsuite.wstest import run; run()",
                 "-m", "fuzzingclient", "-s", str(spec_path)],
                cwd=HOME, env={**os.environ, "PYTHONPATH": str(SITE)}, stdout=log,
                stderr=subprocess.STDOUT, check=True,
            )  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        echo.terminate()
        echo.wait(10)

    counts, odd = summarise(json.loads((reports / "index.json").read_text()))
    total = sum(counts.values())
    mode = "hub (start_hub)" if args.hub else "pull (receive_raw)"
    print(f"Autobahn fuzzingclient, {mode}, {total} cases in {elapsed:.0f} s (12.*, 13.* excluded)")
    for name in BEHAVIOURS:
        print(f"  {name:14s} {counts.get(name, 0):4d}")
    for case, behaviour, close in odd:
        print(f"  case {case:8s} behavior {behaviour}, close {close}")
    print(f"report: {reports / 'index.html'}")
    return 1 if counts.get("FAILED") else 0


if __name__ == "__main__":
    sys.exit(main())
