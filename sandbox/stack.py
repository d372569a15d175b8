"""The project's processes as one stack: definitions, one environment builder, readiness, faults.

``make run`` (:mod:`sandbox.run`), the SMS and voice test stacks, the soaks and ``bench/`` all
start web, relay, Celery workers and the simulators from the definitions here, so the sandbox a
developer runs is the stack the tests run. A :class:`ProcessStack` starts each
:class:`Service`, waits until it is ready (its health route answers 200, its port accepts, or
it printed the line it prints once its signal handlers are installed) and says which process
failed with the tail of its log when one is not. Every fault a test injects goes through the
same few methods: :meth:`~ProcessStack.kill` (SIGKILL, children included),
:meth:`~ProcessStack.terminate` (SIGTERM), :meth:`~ProcessStack.stop`,
:meth:`~ProcessStack.restart`; :meth:`~ProcessStack.stop` with no name stops everything.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"


# ==== ports, credentials, environment ==========================================================
def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Ports:
    """Where each process of a stack listens."""

    web: int
    relay: int
    twilio: int
    openai: int
    realtime: int

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in range(5)))

    @property
    def web_url(self) -> str:
        return f"http://{LOOPBACK}:{self.web}"

    @property
    def relay_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.relay}"

    @property
    def twilio_url(self) -> str:
        return f"http://{LOOPBACK}:{self.twilio}"

    @property
    def openai_url(self) -> str:
        return f"http://{LOOPBACK}:{self.openai}"

    @property
    def realtime_url(self) -> str:
        return f"http://{LOOPBACK}:{self.realtime}"


#: ``make run``'s fixed ports (honcho gives web 5000 and relay 5100: base port, +100 each).
SANDBOX_PORTS = Ports(web=5000, relay=5100, twilio=5300, openai=5400, realtime=5500)


@dataclass(frozen=True)
class Credentials:
    """The simulated accounts' secrets, shared by the simulators and the processes using them."""

    account_sid: str
    auth_token: str
    openai_key: str
    encryption_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @classmethod
    def fresh(cls) -> Credentials:
        """Random secrets: a test stack's own account."""
        return cls(
            "AC" + secrets.token_hex(16), secrets.token_hex(16), "sk-sim-" + secrets.token_hex(8)
        )

    @classmethod
    def sandbox(cls) -> Credentials:
        """``make run``'s: fixed, so ``python -m sandbox`` in another terminal knows them; the
        encryption key is a throw-away one per run."""
        return cls("AC" + "5a" * 16, "sandbox-auth-token", "sk-sandbox")


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment minus any OpenAI/Twilio settings and the developer's .env: a
    test's child processes see only what the test gives them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TWILIO_"))}
    env["GATEFRAMES_DOTENV"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def stack_environment(
    base: Mapping[str, str],
    ports: Ports,
    creds: Credentials,
    *,
    redis_url: str | None = None,
    simulate_twilio: bool = True,
    simulate_openai: bool = True,
    keep_configured: bool = False,
) -> dict[str, str]:
    """The one environment every process of a stack gets: the simulated sides point at their
    simulators, and the web, relay and encryption settings agree with ``ports``/``creds``.

    ``keep_configured`` (``make run``): a public URL or encryption key already set in ``base``
    (a developer's ``.env``) is kept; tests leave it off so nothing from the shell leaks in."""
    env = dict(base)
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = str(Path(PYTHON).parent) + os.pathsep + env.get("PATH", "")
    own = {
        "PUBLIC_BASE_URL": ports.web_url,
        "RELAY_PUBLIC_URL": ports.relay_url,
        "ENCRYPTION_KEY": base64.b64encode(creds.encryption_key).decode(),
    }
    for name, value in own.items():
        if not (keep_configured and env.get(name)):
            env[name] = value
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    if simulate_twilio:
        env.update(
            TWILIO_ACCOUNT_SID=creds.account_sid,
            TWILIO_AUTH_TOKEN=creds.auth_token,
            TWILIO_API_BASE_URL=ports.twilio_url,
            PUBLIC_BASE_URL=ports.web_url,  # the simulator signs webhooks for this origin
        )
    if simulate_openai:
        env.update(
            OPENAI_API_KEY=creds.openai_key,
            OPENAI_BASE_URL=ports.openai_url + "/v1",
            OPENAI_REALTIME_URL=f"ws://{LOOPBACK}:{ports.realtime}/v1/realtime",
        )
    return env


# ==== process definitions ======================================================================
@dataclass(frozen=True)
class Service:
    """How to start one process and how to tell it is ready.

    Readiness, strongest first: ``health`` (an HTTP path answering 200 on ``port``), else
    ``ready_line`` (printed once the process's signal handlers are installed), else ``port``
    accepting connections (the simulators install their handlers before they bind)."""

    name: str
    args: tuple[str, ...]
    port: int | None = None
    health: str | None = None
    ready_line: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 60.0


def _listen(module: str, port: int, *extra: str) -> tuple[str, ...]:
    return (PYTHON, "-m", module, "--host", LOOPBACK, "--port", str(port), *extra)


def web(port: int, name: str = "web", env: Mapping[str, str] | None = None) -> Service:
    return Service(name, _listen("webhooks", port), port, health="/healthz", env=env or {})


def relay(port: int, name: str = "relay", env: Mapping[str, str] | None = None) -> Service:
    return Service(name, _listen("relay", port), port, health="/healthz", env=env or {})


def worker(
    name: str = "worker", concurrency: int = 1, env: Mapping[str, str] | None = None
) -> Service:
    """``celery -A tasks worker``, prefork, with a unique node name and no gossip, mingle or
    heartbeat between workers (faster start, quieter logs)."""
    args = (
        PYTHON, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
        "--pool", "prefork", "--concurrency", str(concurrency),
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"{name}-{os.urandom(3).hex()}@%h",
    )  # fmt: skip
    return Service(name, args, ready_line=" ready.", env=env or {})


def twilio_sim(
    port: int,
    creds: Credentials,
    *,
    webhook_url: str | None = None,
    phone_numbers: Iterable[str] = (),
    name: str = "twilio-sim",
) -> Service:
    extra = ["--account-sid", creds.account_sid, "--auth-token", creds.auth_token]
    if webhook_url:
        extra += ["--webhook-url", webhook_url]
    for number in phone_numbers:
        extra += ["--phone-number", number]
    return Service(name, _listen("sandbox.twilio_sim", port, *extra), port)


def openai_sim(port: int, api_key: str, name: str = "openai-sim") -> Service:
    return Service(name, _listen("sandbox.openai_sim", port, "--api-key", api_key), port)


def realtime_sim(
    port: int, api_key: str, speed: float | None = None, name: str = "realtime-sim"
) -> Service:
    extra = ["--api-key", api_key, *(["--speed", str(speed)] if speed is not None else [])]
    return Service(name, _listen("sandbox.realtime_sim", port, *extra), port, health="/healthz")


def redis_server(
    port: int, data_dir: Path, persistent: bool = False, name: str = "redis"
) -> Service:
    """A private redis-server, to stop and start at will (a shared Redis is never stopped).
    ``persistent``: an fsync-always AOF, as a production Redis keeps its queue over a restart."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise StackError("redis-server is required for a stack with its own Redis")
    aof = ("--appendonly", "yes", "--appendfsync", "always") if persistent else ()
    args = (exe, "--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no")
    return Service(name, (*args, *aof, "--dir", str(data_dir)), port)


# ==== running processes ========================================================================
class StackError(RuntimeError):
    """A process of the stack did not start, or died; the message names it and shows its log."""


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
