"""Helpers for tests that run real processes over real sockets."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

#: Redis DB reserved for the test suite; fixtures flush it. Developers running several
#: suites side by side give each its own DB with GATEFRAMES_TEST_REDIS_DB.
TEST_REDIS_DB = int(os.environ.get("GATEFRAMES_TEST_REDIS_DB", "13"))


def http_json(method: str, url: str, body: Any = None, timeout: float = 10.0) -> Any:
    """A JSON request to a simulator or web process; the parsed reply (raises on 4xx/5xx)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def celery_worker_args(name: str, concurrency: int) -> list[str]:
    """``celery -A tasks worker`` as the suites run it: prefork, a unique node name, and no
    gossip/mingle/heartbeat chatter between workers (faster start, quieter logs)."""
    return [
        PYTHON, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
        "--pool", "prefork", "--concurrency", str(concurrency),
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"{name}-{os.urandom(3).hex()}@%h",
    ]  # fmt: skip


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s (last value: {last!r})")


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child-process environment that never reads a developer's .env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TWILIO_"))}
    env["GATEFRAMES_DOTENV"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    if extra:
        env.update(extra)
    return env


class Proc:
    """A child process with its output captured to a log file for post-mortems."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, env=dict(env), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig_timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(sig_timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


class PrivateRedis:
    """A redis-server of a test's own on a spare port, to stop and restart at will (the
    machine's shared Redis is never stopped). ``persistent`` turns on an fsync-always AOF, as a
    production Redis with persistence would keep the queue across a restart."""

    def __init__(self, data_dir: Path, persistent: bool = False):
        exe = shutil.which("redis-server")
        assert exe, "redis-server is required"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else []
        self.args = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *aof,
            "--dir",
            str(data_dir),
        ]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
