"""Helpers for tests that run real processes over real sockets (the processes themselves are
defined in :mod:`sandbox.services` and run by :mod:`sandbox.stack`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sandbox.services import PYTHON, ROOT, Service, clean_environment, free_port
from sandbox.stack import Process, wait_ready

__all__ = [
    "PYTHON",
    "ROOT",
    "TEST_REDIS_DB",
    "Proc",
    "base_env",
    "free_port",
    "http_json",
    "start_service",
    "wait_for",
    "wait_port",
]

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


def start_service(service: Service, log_dir: Path, env: Mapping[str, str]) -> Process:
    """One process from its :mod:`sandbox.services` definition, ready when this returns (its
    health route answers 200); stopped again if it never gets there."""
    proc = Process(service.name, service.args, {**env, **service.env}, log_dir)
    try:
        wait_ready(service, proc)
    except BaseException:
        proc.stop()
        raise
    return proc


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


base_env = clean_environment  # the name the suites use
Proc = Process
