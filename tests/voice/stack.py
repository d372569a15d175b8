"""The phone-call stack as real processes: Realtime and Twilio simulators, web, relay.

A test places calls the way Twilio does (:mod:`sandbox.dial`: signed ``/twilio/voice``, then
the ``<Stream>`` it names) with the phone simulator (:mod:`sandbox.phone`), and asks the
Realtime simulator what OpenAI would have seen (``/_sandbox/sessions``).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sandbox import dial, phone
from tests.sms.stack import kill_tree
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
        chat: bool = False,
    ):
        """``relays=2``: two relay processes behind a :class:`tests.voice.router.Router`
        (``RELAY_PUBLIC_URL`` for everyone), new connections going to the first. ``chat``:
        also the OpenAI chat simulator (the call summary's model)."""
        self.log_dir = log_dir
        self.key = secrets.token_bytes(32)
        self.auth_token = secrets.token_hex(16)
        self.account_sid = "AC" + secrets.token_hex(16)
        self.api_key = "sk-sim-" + secrets.token_hex(8)
        ports = [free_port() for _ in range(5)]
        self.realtime_port, self.twilio_port, self.web_port, self.relay_port = ports[:4]
        self.chat_port = ports[4] if chat else None
        self.chat_url = f"http://127.0.0.1:{ports[4]}"
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
                **({"OPENAI_BASE_URL": self.chat_url + "/v1"} if chat else {}),
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
        if self.chat_port is not None:
            self.procs["chat"] = self._proc(
                "chat-sim", "sandbox.openai_sim", self.chat_port, ["--api-key", self.api_key]
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
            *([("chat", self.chat_port)] if self.chat_port is not None else []),
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

    def start_worker(self, name: str = "worker", env: dict[str, str] | None = None) -> None:
        """A Celery worker (prefork, one process), ready when this returns."""
        args = celery_worker_args(name, 1)
        self.procs[name] = Proc(name, args, {**self.env, **(env or {})}, self.log_dir)
        wait_for(lambda: "ready." in self.procs[name].log_text(), timeout=60)

    def kill_worker(self, name: str = "worker") -> None:
        """SIGKILL the worker and its pool children, as a host crash would."""
        kill_tree(self.procs[name].popen.pid)
        self.procs[name].popen.wait()

    def log_records(self, prefix: str) -> list[dict[str, Any]]:
        """The JSON log records of every process whose name starts with ``prefix``."""
        out = []
        for name, proc in self.procs.items():
            if name.startswith(prefix):
                for line in proc.log_text().splitlines():
                    if line.startswith("{"):
                        try:
                            out.append(json.loads(line))
                        except ValueError:
                            continue
        return out

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

    def newest_session(self, timeout: float = 20.0) -> dict[str, Any]:
        """The newest Realtime simulator session. Sessions carry no call SID, so this is only
        "the call's session" in a test that runs one call at a time."""
        return wait_for(lambda: (self.sessions() or [None])[-1], timeout)

    def realtime_fault(self, **fault: Any) -> None:
        query = urlencode({k: "null" if v is None else v for k, v in fault.items()})
        http_json("GET", f"{self.realtime_http}/_sandbox/faults?{query}")

    def twilio_state(self) -> dict[str, Any]:
        return http_json("GET", f"http://127.0.0.1:{self.twilio_port}/_sandbox/state")

    def realtime_reset(self) -> None:
        http_json("GET", self.realtime_http + "/_sandbox/reset")

    def caller_says(self, text: str) -> None:
        """The transcript of the caller's next turn (the simulated model acts on it)."""
        http_json("GET", f"{self.realtime_http}/_sandbox/caller_says?text={quote(text)}")

    def model_calls_tool(self, name: str, arguments: dict[str, Any]) -> None:
        """The next response calls ``name`` with exactly these arguments."""
        query = urlencode({"name": name, "arguments": json.dumps(arguments)})
        http_json("GET", f"{self.realtime_http}/_sandbox/call_tool?{query}")

    def staff_phone(self, number: str, **behaviour: Any) -> None:
        """How a dialled phone behaves (answer, busy, ring_seconds, talk_seconds)."""
        http_json("POST", f"{self.twilio_url}/_sandbox/phones/{number}", behaviour)

    def twilio_settings(self, **settings: Any) -> None:
        http_json("POST", f"{self.twilio_url}/_sandbox/settings", settings)

    def chat_requests(self) -> list[dict[str, Any]]:
        return http_json("GET", self.chat_url + "/_sandbox/requests")

    def chat_fault(self, **fault: Any) -> None:
        http_json("POST", self.chat_url + "/_sandbox/faults", fault)
