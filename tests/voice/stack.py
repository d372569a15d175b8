"""The phone-call stack as real processes: Realtime and Twilio simulators, web, relay.

A test places calls the way Twilio does (:mod:`sandbox.dial`: signed ``/twilio/voice``, then
the ``<Stream>`` it names) with the phone simulator (:mod:`sandbox.phone`), and asks the
Realtime simulator what OpenAI would have seen (``/_sandbox/sessions``).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sandbox import dial, phone
from tests.support import (
    PYTHON,
    Proc,
    base_env,
    celery_worker_args,
    free_port,
    http_json,
    wait_for,
    wait_port,
)
from tests.voice.router import Router

BOT_NUMBER = "+14082605145"
CALLER = "+14155550100"


@dataclass
class Call:
    """One placed call: what Twilio was told to do, and the phone on the line."""

    sid: str
    target: dial.StreamTarget
    phone: phone.Phone


class VoiceStack:
    def __init__(
        self,
        log_dir: Path,
        redis_url: str,
        relay_env: dict[str, str] | None = None,
        *,
        env: dict[str, str] | None = None,
        worker: bool = False,
        relays: int = 1,
    ):
        """``relays=2``: two relay processes behind a :class:`tests.voice.router.Router`
        (``RELAY_PUBLIC_URL`` for everyone), new connections going to the first."""
        self.log_dir = log_dir
        self.key = secrets.token_bytes(32)
        self.auth_token = secrets.token_hex(16)
        self.account_sid = "AC" + secrets.token_hex(16)
        self.api_key = "sk-sim-" + secrets.token_hex(8)
        ports = [free_port() for _ in range(4)]
        self.realtime_port, self.twilio_port, self.web_port, self.relay_port = ports
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.relay_ports = [self.relay_port] + [free_port() for _ in range(relays - 1)]
        self.router = Router(self.relay_port).start() if relays > 1 else None
        public = self.router.port if self.router else self.relay_port
        self.relay_url = f"ws://127.0.0.1:{public}"
        self.realtime_http = f"http://127.0.0.1:{self.realtime_port}"
        self.twilio_url = f"http://127.0.0.1:{self.twilio_port}"
        self.env = base_env(
            {
                "TWILIO_ACCOUNT_SID": self.account_sid,
                "TWILIO_AUTH_TOKEN": self.auth_token,
                "TWILIO_API_BASE_URL": f"http://127.0.0.1:{self.twilio_port}",
                "OPENAI_API_KEY": self.api_key,
                "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{self.realtime_port}/v1/realtime",
                "PUBLIC_BASE_URL": self.web_url,
                "RELAY_PUBLIC_URL": self.relay_url,
                "ENCRYPTION_KEY": base64.b64encode(self.key).decode(),
                "BOT_PROJECTED_ADDRESS": BOT_NUMBER,
                "REDIS_URL": redis_url,
                "LOG_FORMAT": "json",
                **(env or {}),
            }
        )
        self.relay_env = relay_env or {}
        self.worker = worker
        self.procs: dict[str, Proc] = {}

    def start(self, realtime_speed: float = 4.0) -> VoiceStack:
        try:
            self._start(realtime_speed)
        except BaseException:
            print(self.logs())
            self.stop()
            raise
        return self

    def _start(self, realtime_speed: float) -> None:
        self.procs["realtime"] = self._proc(
            "realtime-sim",
            "sandbox.realtime_sim",
            self.realtime_port,
            ["--api-key", self.api_key, "--speed", str(realtime_speed)],
        )
        self.procs["twilio"] = self._proc(
            "twilio-sim",
            "sandbox.twilio_sim",
            self.twilio_port,
            ["--account-sid", self.account_sid, "--auth-token", self.auth_token],
        )
        self.procs["web"] = self._proc("web", "webhooks", self.web_port)
        for n, port in enumerate(self.relay_ports):
            name = "relay" if n == 0 else f"relay{n + 1}"
            self.procs[name] = self._proc(name, "relay", port, env=self.relay_env)
        if self.worker:
            args = celery_worker_args("worker", 1)
            self.procs["worker"] = Proc("worker", args, self.env, self.log_dir)
        relays = [
            ("relay" if n == 0 else f"relay{n + 1}", p) for n, p in enumerate(self.relay_ports)
        ]
        for name, port in (
            ("realtime", self.realtime_port),
            ("twilio", self.twilio_port),
            ("web", self.web_port),
            *relays,
        ):
            wait_port(port, proc=self.procs[name].popen)

    def _proc(
        self,
        name: str,
        module: str,
        port: int,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Proc:
        args = [PYTHON, "-m", module, "--host", "127.0.0.1", "--port", str(port), *(extra or [])]
        return Proc(name, args, {**self.env, **(env or {})}, self.log_dir)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        if self.router is not None:
            self.router.stop()

    def logs(self) -> str:
        return "\n".join(f"==== {n}\n{p.log_text()[-6000:]}" for n, p in self.procs.items())

    # -- calls -------------------------------------------------------------------------------
    def place_call(
        self,
        *,
        answered_by: str | None = None,
        outbound: bool = False,
        speed: float = 1.0,
    ) -> Call:
        """Ask ``/twilio/voice`` for TwiML as Twilio would, then connect the phone."""
        sid = dial.new_call_sid()
        from_, to = (BOT_NUMBER, CALLER) if outbound else (CALLER, BOT_NUMBER)
        target = dial.voice_webhook(
            self.web_url, self.auth_token, call_sid=sid, from_=from_, to=to, answered_by=answered_by
        )
        caller = phone.Phone(
            target.url, target.params, speed=speed, call_sid=sid, auth_token=self.auth_token
        )
        caller.connect()
        return Call(sid, target, caller)

    def call_in(self) -> dial.SimCall:
        """A call the Twilio simulator places and runs (TwiML followed, updates obeyed)."""
        return dial.call_in(self.twilio_url, voice_url=self.web_url + "/twilio/voice")

    def after_stream(self, call: Call) -> dial.AfterStream:
        return dial.after_stream(call.target, self.auth_token, call.sid)

    # -- what OpenAI saw ---------------------------------------------------------------------
    def sessions(self) -> list[dict[str, Any]]:
        return http_json("GET", self.realtime_http + "/_sandbox/sessions")["sessions"]

    def open_sessions(self) -> list[dict[str, Any]]:
        return [s for s in self.sessions() if s.get("open")]

    def session_for(self, call: Call, timeout: float = 20.0) -> dict[str, Any]:
        """The simulator session whose greeting conversation item this call's bridge sent.

        Sessions carry no call SID, so a test that runs one call at a time takes the newest."""
        return wait_for(lambda: (self.sessions() or [None])[-1], timeout)

    def realtime_fault(self, **fault: Any) -> None:
        query = urlencode({k: "null" if v is None else v for k, v in fault.items()})
        http_json("GET", f"{self.realtime_http}/_sandbox/faults?{query}")

    def twilio_state(self) -> dict[str, Any]:
        return http_json("GET", f"http://127.0.0.1:{self.twilio_port}/_sandbox/state")

    def realtime_reset(self) -> None:
        http_json("GET", self.realtime_http + "/_sandbox/reset")
