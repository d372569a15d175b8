"""Processes for the relay benchmarks: ports, readiness, CPU from ``/proc``, and the local
stack (echo upstream + relay) that :mod:`bench.relay_load` measures."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox import services
from sandbox.services import PYTHON, ROOT, Service, clean_environment, free_port
from sandbox.stack import ProcessStack


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


@dataclass(frozen=True)
class Target:
    """The relay under test and the echo upstream it was pointed at."""

    template: str  #: the stream URL; ``{token}`` becomes a fresh twilio token per call
    key: bytes | None  #: ENCRYPTION_KEY for those tokens
    relay_pid: int | None  #: to read the relay's CPU time
    upstream_port: int
    upstream_pid: int | None = None
    #: TWILIO_AUTH_TOKEN and RELAY_PUBLIC_URL of the relay: upgrades are signed with them.
    twilio_auth_token: str | None = None
    relay_public_url: str | None = None


@contextlib.contextmanager
def local_stack(
    pace_ms: float = 0,
    delta_type: str = "response.output_audio.delta",
    upstream_port: int | None = None,
    relay_url: str | None = None,
    relay_pid: int | None = None,
    encryption_key: bytes | None = None,
    engine: str = "realtime",
) -> Iterator[Target]:
    """Start the echo upstream (paced deltas when ``pace_ms``) and, unless ``relay_url`` names
    another relay, the relay (:func:`sandbox.services.relay`) pointed at it; stop both
    afterwards. Their output goes to ``var/bench/``. ``engine="live"``: the relay runs its calls
    on GPT-Live (``VOICE_ENGINE=live``) and the echo speaks that protocol."""
    up_port = upstream_port or free_port()
    echo = Service(
        "echo-upstream",
        (PYTHON, "-m", "bench.echo_upstream", "--port", str(up_port),
         "--delta-type", delta_type, "--pace-ms", str(pace_ms), "--protocol", engine),
        up_port,
        health="/healthz",
    )  # fmt: skip
    log_dir = ROOT / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    with ProcessStack(log_dir, clean_environment({"LOG_LEVEL": "WARNING"})) as stack:
        stack.run(echo)
        if relay_url:
            yield Target(relay_url, encryption_key, relay_pid, up_port, stack.pid(echo.name))
            return
        key, relay_port = secrets.token_bytes(32), free_port()
        auth, public = secrets.token_hex(16), "wss://relay.bench.invalid"
        relay_env = {
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{up_port}/v1/realtime",
            "ENCRYPTION_KEY": base64.b64encode(key).decode(),
            "REDIS_URL": "redis://127.0.0.1:6379/14",
            "SESSION_TIME_LIMIT_SECONDS": "3600",
            "TWILIO_AUTH_TOKEN": auth,
            "RELAY_PUBLIC_URL": public,
            "VOICE_ENGINE": engine,
            "OPENAI_LIVE_URL": f"ws://127.0.0.1:{up_port}/v1/live/sessions",
        }
        stack.run(services.relay(relay_port, env=relay_env))
        template = f"ws://127.0.0.1:{relay_port}/token/{{token}}"
        yield Target(template, key, stack.pid("relay"), up_port, stack.pid(echo.name), auth, public)
