"""The project's processes as one stack: running them, readiness, faults.

``make run`` (:mod:`sandbox.run`), the SMS and voice test stacks, the soaks and ``bench/`` all
start web, relay, Celery workers and the simulators from the definitions in
:mod:`sandbox.services`. A :class:`ProcessStack` starts each :class:`Service`, waits until it
is ready (its health route answers 200, its port accepts, or it printed the line it prints once
its signal handlers are installed) and says which process failed with the tail of its log when
one is not. Every fault a test injects goes through the
same few methods: :meth:`~ProcessStack.kill` (SIGKILL, children included),
:meth:`~ProcessStack.terminate` (SIGTERM), :meth:`~ProcessStack.stop`,
:meth:`~ProcessStack.restart`; :meth:`~ProcessStack.stop` with no name stops everything.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Self

from sandbox.services import LOOPBACK, ROOT, Service, StackError


# ==== running processes ========================================================================
class Process:
    """A child process with its output appended to ``<log_dir>/<name>.log`` for post-mortems
    (``log_dir=None``: the output goes to this process's terminal)."""

    def __init__(
        self, name: str, args: Iterable[str], env: Mapping[str, str], log_dir: Path | None
    ):
        self.name = name
        self.log_path = log_dir / f"{name}.log" if log_dir is not None else None
        self._log: IO[bytes] | None = None
        if self.log_path is not None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        #: where this run's output starts in the log (a restart appends to the same file)
        self.log_offset = self._log.tell() if self._log else 0
        self.popen = subprocess.Popen(
            list(args),
            env=dict(env),
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
        )

    def log_text(self, since_start: bool = False) -> str:
        if self._log is None or self.log_path is None:
            return ""
        with contextlib.suppress(ValueError):  # already closed
            self._log.flush()
        text = self.log_path.read_bytes()[self.log_offset if since_start else 0 :]
        return text.decode(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log is not None:
            self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL the process and its children, as an OOM killer or a host crash would."""
        for victim in [*children(self.popen.pid), self.popen.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        self.popen.wait()


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (read from /proc, no extra packages)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _probe(service: Service, proc: Process) -> str | None:
    """None when ready, else what is still missing."""
    if service.health and service.port:
        url = f"http://{LOOPBACK}:{service.port}{service.health}"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return None if resp.status == 200 else f"{url} answered {resp.status}"
        except urllib.error.HTTPError as err:
            return f"{url} answered {err.code}"
        except OSError as exc:
            return f"{url}: {exc}"
    if service.ready_line:
        seen = service.ready_line in proc.log_text(since_start=True)
        return None if seen else f"no {service.ready_line.strip()!r} line in its log yet"
    if service.port:
        try:
            with socket.create_connection((LOOPBACK, service.port), timeout=0.2):
                return None
        except OSError:
            return f"nothing listening on port {service.port}"
    return None


def wait_ready(service: Service, proc: Process, timeout: float | None = None) -> None:
    """Block until ``service`` is ready; :class:`StackError` naming it if it exits or times out."""
    limit = service.timeout if timeout is None else timeout
    deadline = time.monotonic() + limit
    while True:
        if not proc.alive():
            raise StackError(_failure(service, proc, f"exited with {proc.popen.returncode}"))
        missing = _probe(service, proc)
        if missing is None:
            return
        if time.monotonic() > deadline:
            what = f"not ready after {limit:.0f} s ({missing})"
            raise StackError(_failure(service, proc, what))
        time.sleep(0.05)


def _failure(service: Service, proc: Process, what: str) -> str:
    """``proc`` may run ``service`` under a supervisor (``make run``'s honcho)."""
    name = service.name if service.name == proc.name else f"{service.name} (under {proc.name})"
    if proc.log_path is None:
        return f"{name} {what} (its output is above)"
    tail = "\n".join(proc.log_text().splitlines()[-40:])
    return f"{name} {what}; last lines of {proc.log_path}:\n{tail}"


class ProcessStack:
    """Named processes started from :class:`Service` definitions, with one fault API."""

    def __init__(self, log_dir: Path | None, env: Mapping[str, str]):
        self.log_dir = log_dir
        #: every process's environment; a service's own ``env`` is laid over it at each start
        self.env = dict(env)
        if log_dir is not None and not self.env.get("DATABASE_URL"):
            # A stack with its own logs keeps its own call log too, never the developer's
            # var/gateframes.db (left unmigrated: the worker says once that it keeps none).
            self.env["DATABASE_URL"] = f"sqlite:///{Path(log_dir).resolve() / 'gateframes.db'}"
        self.services: dict[str, Service] = {}
        self.procs: dict[str, Process] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- starting ------------------------------------------------------------------------------
    def add(self, *services: Service) -> Self:
        """Register services without starting them (:meth:`start` starts them together)."""
        for service in services:
            self.services[service.name] = service
        return self

    def start(self, *names: str, wait: bool = True) -> Self:
        """Start the named services (all registered ones not running when no name is given),
        then wait until each is ready. On failure everything is stopped, logs printed."""
        todo = names or tuple(n for n in self.services if n not in self.procs or not self.alive(n))
        try:
            for name in todo:
                service = self.services[name]
                env = {**self.env, **service.env}
                self.procs[name] = Process(name, service.args, env, self.log_dir)
            if wait:
                for name in todo:
                    self.wait_ready(name)
        except BaseException:
            print(self.logs(), file=sys.stderr)
            self.stop()
            raise
        return self

    def run(self, service: Service, wait: bool = True) -> Process:
        """Add ``service`` and start it (ready when this returns, unless ``wait=False``)."""
        self.add(service).start(service.name, wait=wait)
        return self.procs[service.name]

    def wait_ready(self, name: str, timeout: float | None = None) -> None:
        wait_ready(self.services[name], self.procs[name], timeout)

    def restart(self, name: str, wait: bool = True) -> None:
        """Stop ``name`` if it runs, then start it again with the stack's current ``env``."""
        self.stop(name)
        self.start(name, wait=wait)

    # -- faults ----------------------------------------------------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL ``name`` and its children (a Celery pool, gunicorn's worker)."""
        self.procs[name].kill()

    def terminate(self, name: str) -> None:
        """SIGTERM ``name`` and return at once (a deploy's stop; see :meth:`wait_exit`)."""
        self.procs[name].popen.send_signal(signal.SIGTERM)

    def wait_exit(self, name: str, timeout: float = 30.0) -> int:
        return self.procs[name].popen.wait(timeout)

    def stop(self, name: str | None = None) -> None:
        """Stop ``name`` (SIGTERM, SIGKILL after 10 s), or every process, newest first."""
        names = [name] if name else list(reversed(self.procs))
        for n in names:
            if n in self.procs:
                self.procs[n].stop()

    # -- looking at it ---------------------------------------------------------------------------
    def alive(self, name: str) -> bool:
        return name in self.procs and self.procs[name].alive()

    def pid(self, name: str) -> int:
        return self.procs[name].popen.pid

    def port(self, name: str) -> int:
        port = self.services[name].port
        assert port is not None, f"{name} has no port"
        return port

    def log_text(self, name: str) -> str:
        """Everything ``name`` has written, every restart included."""
        return self.procs[name].log_text()

    def log_records(self, prefix: str) -> list[dict[str, Any]]:
        """The JSON log records of every process whose name starts with ``prefix``."""
        out = []
        for name, proc in self.procs.items():
            if name.startswith(prefix):
                for line in proc.log_text().splitlines():
                    if line.startswith("{"):
                        with contextlib.suppress(ValueError):
                            out.append(json.loads(line))
        return out

    def logs(self, tail: int = 6000) -> str:
        """The end of every process's log, for a failed test's output."""
        logged = [(n, p) for n, p in self.procs.items() if p.log_path is not None]
        return "\n".join(f"==== {n} ====\n{p.log_text()[-tail:]}" for n, p in logged)
