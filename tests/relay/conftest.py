"""Real processes for relay tests: the relay (``python -m relay``), the Realtime simulator
(``python -m sandbox.realtime_sim``), a byte-exact echo upstream, and the suite's Redis.

Relays and upstreams start once per module; Redis is flushed before every test (``redis_url``),
which clears nonces and rate-limit windows. Each test that opens browser sockets uses its own
client IP through ``X-Forwarded-For`` (the main relay trusts one proxy hop), so the per-IP
upgrade limit of one test never spills into another.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websocket
from twilio.request_validator import RequestValidator

from common import tokens
from sandbox import services
from tests.relay.doubles import EchoUpstream
from tests.support import TEST_REDIS_DB, Proc, base_env, free_port, start_service, wait_for

KEY = os.urandom(32)
API_KEY = "sk-sim-relay-tests"
TWILIO_AUTH_TOKEN = "relay-tests-twilio-auth-token"
ORIGIN = "https://www.gateframes.com"
REDIS_URL = f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
_ips = itertools.count(1)


def fresh_ip() -> str:
    """A client IP no other test in this run has used."""
    n = next(_ips)
    return f"198.51.{n // 250}.{n % 250 + 1}"


def mint(origin: str = "client", ttl: int = 300) -> str:
    return tokens.mint(KEY, origin, ttl)


def http(method: str, url: str, body: Any = None, headers: dict | None = None):
    """(status, headers, body bytes) without raising on 4xx/5xx."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def metric(relay: Relay, name: str, headers: dict | None = None) -> float:
    """One sample's value from the relay's /metrics (0 when the series is absent)."""
    status, _, body = http("GET", relay.http_base + "/metrics", headers=headers)
    assert status == 200, body
    match = re.search(rf"^{re.escape(name)} (\S+)$", body.decode(), re.M)
    return float(match.group(1)) if match else 0.0


@dataclass
class Relay:
    proc: Proc
    port: int

    @property
    def base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.proc.log_text()

    def browser(
        self,
        token: str | None = None,
        *,
        ip: str | None = None,
        origin: str | None = ORIGIN,
        path: str | None = None,
        protocols: list[str] | None = None,
        timeout: float = 15,
        signed: bool = False,
        sockopt: list[tuple[int, int, int]] | None = None,
    ) -> websocket.WebSocket:
        """Open a browser socket (raises websocket.WebSocketBadStatusException on refusal).
        ``signed`` adds Twilio's X-Twilio-Signature, as a Media Streams upgrade carries."""
        token = mint() if token is None else token
        url = self.base + (path if path is not None else f"/token/{token}")
        headers = [f"X-Forwarded-For: {ip or fresh_ip()}"]
        if signed:
            signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(url, {})
            headers.append(f"X-Twilio-Signature: {signature}")
        kwargs: dict[str, Any] = {"header": headers, "timeout": timeout}
        if origin is None:
            kwargs["suppress_origin"] = True
        else:
            kwargs["origin"] = origin
        if protocols:
            kwargs["subprotocols"] = protocols
        if sockopt:
            kwargs["sockopt"] = sockopt
        return websocket.create_connection(url, **kwargs)


@dataclass
class Sim:
    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def sessions(self) -> list[dict[str, Any]]:
        status, _, body = http("GET", f"http://127.0.0.1:{self.port}/_sandbox/sessions")
        assert status == 200, body
        data = json.loads(body)
        return data["sessions"] if isinstance(data, dict) else data

    def open_sessions(self) -> list[dict[str, Any]]:
        return [s for s in self.sessions() if session_is_open(s)]

    def reset(self) -> None:
        status, _, body = http("GET", f"http://127.0.0.1:{self.port}/_sandbox/reset")
        assert status == 200, body

    def fault(self, spec: dict[str, Any]) -> None:
        query = urllib.parse.urlencode({k: "null" if v is None else v for k, v in spec.items()})
        status, _, body = http("GET", f"http://127.0.0.1:{self.port}/_sandbox/faults?{query}")
        assert status in (200, 201, 204), body


def session_is_open(session: dict[str, Any]) -> bool:
    """The simulator's open/closed flag, whichever spelling it uses."""
    if "open" in session:
        return bool(session["open"])
    if "closed" in session:
        return not session["closed"]
    return session.get("state") == "open"


@pytest.fixture(scope="module")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("relay-logs")


def run_sim(logs_dir: Path, name: str = "realtime-sim", echo: bool = False) -> Iterator[Sim]:
    """A Realtime simulator process (``echo``: it answers audio with the same audio)."""
    port = free_port()
    service = services.realtime_sim(port, API_KEY, name=name, echo=echo)
    proc = start_service(service, logs_dir, base_env())
    try:
        yield Sim(proc, port)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def sim(logs_dir: Path) -> Iterator[Sim]:
    yield from run_sim(logs_dir)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoUpstream]:
    upstream = EchoUpstream()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def start_relay(logs_dir: Path) -> Iterator[Callable[..., Relay]]:
    """``start_relay(upstream_url, **env)``: a relay process for this module."""
    procs: list[Proc] = []

    def start(upstream_url: str, name: str = "relay", **env: str) -> Relay:
        port = free_port()
        child_env = base_env(
            {
                "OPENAI_REALTIME_URL": upstream_url,
                "OPENAI_API_KEY": API_KEY,
                "ENCRYPTION_KEY": base64.b64encode(KEY).decode(),
                "REDIS_URL": REDIS_URL,
                "LOG_FORMAT": "text",
                # Media Streams upgrades are signed over RELAY_PUBLIC_URL + path
                "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
                "RELAY_PUBLIC_URL": f"ws://127.0.0.1:{port}",
                **env,
            }
        )
        proc = start_service(services.relay(port, f"{name}-{port}"), logs_dir, child_env)
        procs.append(proc)
        return Relay(proc, port)

    yield start
    for proc in procs:
        proc.stop()


def wait_closed(ws: websocket.WebSocket, timeout: float = 15) -> tuple[int, str, list[str]]:
    """Read until the relay closes: (close code, reason, text messages seen before it)."""
    ws.settimeout(timeout)
    seen: list[str] = []
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            data = frame.data
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            return code, data[2:].decode(), seen
        if opcode == websocket.ABNF.OPCODE_TEXT:
            seen.append(frame.data.decode())


__all__ = ["Relay", "Sim", "fresh_ip", "http", "mint", "wait_closed", "wait_for"]
