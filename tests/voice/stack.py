"""The phone-call stack as real processes (:mod:`sandbox.stack`): Realtime and Twilio
simulators, web, relay.

A test places calls the way Twilio does (:mod:`sandbox.dial`: signed ``/twilio/voice``, then
the ``<Stream>`` it names) with the phone simulator (:mod:`sandbox.phone`), and asks the
Realtime simulator what OpenAI would have seen (``/_sandbox/sessions``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sandbox import dial, phone, services
from sandbox.services import Credentials, Ports, clean_environment, free_port, stack_environment
from sandbox.stack import ProcessStack
from tests.support import http_json, wait_for
from tests.voice.router import Router

BOT_NUMBER = "+14082605145"
CALLER = "+14155550100"


@dataclass
class Call:
    """One placed call: what Twilio was told to do, and the phone on the line."""

    sid: str
    target: dial.StreamTarget
    phone: phone.Phone


class VoiceStack(ProcessStack):
    """The voice processes (:mod:`sandbox.stack`): Realtime and Twilio simulators, web, relay.

    ``relays=2``: two relay processes (``relay``, ``relay2``) behind a
    :class:`tests.voice.router.Router` (``RELAY_PUBLIC_URL`` for everyone), new connections
    going to the first. ``chat``: also the OpenAI chat simulator (the call summary's model).
    ``worker``: a Celery worker too. ``realtime_speed``: how much faster than real time the
    Realtime simulator streams its audio, as OpenAI does (None: its default, real time).
    ``engine="live"``: calls run on GPT-Live (``VOICE_ENGINE=live``) against the GPT-Live
    simulator, which speaks as fast as the Realtime one."""

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
        realtime_speed: float | None = 4.0,
        engine: str = "realtime",
    ):
        self.creds = Credentials.fresh()
        self.ports = Ports.free()
        self.key, self.auth_token = self.creds.encryption_key, self.creds.auth_token
        self.account_sid, self.api_key = self.creds.account_sid, self.creds.openai_key
        self.realtime_port, self.twilio_port = self.ports.realtime, self.ports.twilio
        self.web_port, self.relay_port = self.ports.web, self.ports.relay
        self.chat_url, self.web_url = self.ports.openai_url, self.ports.web_url
        self.realtime_http, self.twilio_url = self.ports.realtime_url, self.ports.twilio_url
        self.relay_ports = [self.relay_port] + [free_port() for _ in range(relays - 1)]
        self.router = Router(self.relay_port).start() if relays > 1 else None
        public = self.router.port if self.router else self.relay_port
        self.relay_url = f"ws://127.0.0.1:{public}"
        base = clean_environment()
        super().__init__(
            log_dir, stack_environment(base, self.ports, self.creds, redis_url=redis_url)
        )
        self.env.update(
            {
                "RELAY_PUBLIC_URL": self.relay_url,
                "BOT_PROJECTED_ADDRESS": BOT_NUMBER,
                "LOG_FORMAT": "json",
                **(env or {}),
            }
        )
        self.relay_env = relay_env or {}
        self.live_port = free_port() if engine == "live" else 0
        self.live_http = f"http://127.0.0.1:{self.live_port}"
        if engine == "live":
            self.env["VOICE_ENGINE"] = "live"
            self.env["OPENAI_LIVE_URL"] = f"ws://127.0.0.1:{self.live_port}/v1/live/sessions"
        self.add(
            *(
                [services.live_sim(self.live_port, self.api_key, realtime_speed)]
                if self.live_port
                else []
            ),
            services.realtime_sim(self.realtime_port, self.api_key, realtime_speed),
            services.twilio_sim(self.twilio_port, self.creds),
            *([services.openai_sim(self.ports.openai, self.api_key)] if chat else []),
            services.web(self.web_port),
            *(
                services.relay(port, "relay" if n == 0 else f"relay{n + 1}", self.relay_env)
                for n, port in enumerate(self.relay_ports)
            ),
            *([services.worker("worker")] if worker else []),
        )

    def start(self, *names: str, wait: bool = True) -> VoiceStack:
        super().start(*names, wait=wait)
        return self

    def start_worker(self, name: str = "worker", env: dict[str, str] | None = None) -> None:
        """A Celery worker (prefork, one process), ready when this returns."""
        self.run(services.worker(name, 1, env))

    def stop(self, name: str | None = None) -> None:
        super().stop(name)
        if name is None and self.router is not None:
            self.router.stop()

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
        return http_json("GET", f"{self.twilio_url}/_sandbox/state")

    def realtime_reset(self) -> None:
        http_json("GET", self.realtime_http + "/_sandbox/reset")

    def caller_says(self, text: str) -> None:
        """The transcript of the caller's next turn (the simulated model acts on it)."""
        http_json("GET", f"{self.realtime_http}/_sandbox/caller_says?text={quote(text)}")

    def model_calls_tool(self, name: str, arguments: dict[str, Any]) -> None:
        """The next response calls ``name`` with exactly these arguments."""
        query = urlencode({"name": name, "arguments": json.dumps(arguments)})
        http_json("GET", f"{self.realtime_http}/_sandbox/call_tool?{query}")

    # -- what GPT-Live saw (engine="live") ----------------------------------------------------
    def live(self, path: str) -> Any:
        """``GET /_sandbox/<path>`` on the GPT-Live simulator."""
        return http_json("GET", f"{self.live_http}/_sandbox/{path}")

    def live_session(self, timeout: float = 20.0) -> dict[str, Any]:
        """The newest GPT-Live simulator session (one call at a time in such a test)."""
        return wait_for(lambda: (self.live("sessions")["sessions"] or [None])[-1], timeout)

    def staff_phone(self, number: str, **behaviour: Any) -> None:
        """How a dialled phone behaves (answer, busy, ring_seconds, talk_seconds)."""
        http_json("POST", f"{self.twilio_url}/_sandbox/phones/{number}", behaviour)

    def twilio_settings(self, **settings: Any) -> None:
        http_json("POST", f"{self.twilio_url}/_sandbox/settings", settings)

    def chat_requests(self) -> list[dict[str, Any]]:
        return http_json("GET", self.chat_url + "/_sandbox/requests")

    def chat_fault(self, **fault: Any) -> None:
        http_json("POST", self.chat_url + "/_sandbox/faults", fault)
