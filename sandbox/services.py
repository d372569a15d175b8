"""The project's processes, defined once: ports, credentials, one environment builder, and how
each process (web, relay, Celery workers, the simulators, a private Redis) is started and known
to be ready. :mod:`sandbox.stack` runs them; ``make run``, the test stacks, the soaks and
``bench/`` all start these definitions, so the sandbox a developer runs is the stack the tests
run.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """A process of the stack did not start, or died; the message names it and shows its log."""


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
#: ``make run``'s GPT-Live simulator (``ws://127.0.0.1:5600/v1/live/sessions``).
SANDBOX_LIVE_PORT = 5600


@dataclass(frozen=True)
class Credentials:
    """The simulated accounts' secrets, shared by the simulators and the processes using them."""

    account_sid: str
    auth_token: str
    openai_key: str
    encryption_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    #: CONSOLE_SECRET_KEY: signs the staff console's sessions.
    console_secret: str = field(default_factory=lambda: secrets.token_hex(32))

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
        "CONSOLE_SECRET_KEY": creds.console_secret,
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
    port: int,
    api_key: str,
    speed: float | None = None,
    name: str = "realtime-sim",
    echo: bool = False,
) -> Service:
    """``echo``: every appended chunk comes straight back as audio (the relay benchmarks)."""
    extra = ["--api-key", api_key, *(["--speed", str(speed)] if speed is not None else [])]
    if echo:
        extra.append("--echo")
    return Service(name, _listen("sandbox.realtime_sim", port, *extra), port, health="/healthz")


def live_sim(
    port: int,
    api_key: str,
    speed: float | None = None,
    name: str = "live-sim",
    echo: bool = False,
) -> Service:
    """The GPT-Live simulator (:mod:`sandbox.live_sim`): ``ws://127.0.0.1:PORT/v1/live/sessions``.
    ``echo``: every appended chunk comes straight back as audio (relay tests, benchmarks)."""
    extra = ["--api-key", api_key, *(["--speed", str(speed)] if speed is not None else [])]
    if echo:
        extra.append("--echo")
    return Service(name, _listen("sandbox.live_sim", port, *extra), port, health="/healthz")


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
