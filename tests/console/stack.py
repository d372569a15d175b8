"""The console's stack as real processes: Twilio, OpenAI chat and Realtime simulators, web,
relay and a Celery worker, all on one call and text log (SQLite or PostgreSQL)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from sandbox import services
from sandbox.services import Credentials, Ports, clean_environment, stack_environment
from sandbox.stack import ProcessStack
from tests.console.client import StaffClient, sign_in
from tests.support import PYTHON, http_json, wait_for

STAFF = ("+14155550180", "+14155550181")
NOTIFY = "+14155550189"
BOT_NUMBER = "+14082605145"
BOT = "gateframes-bot"


class ConsoleStack(ProcessStack):
    def __init__(
        self, log_dir: Path, redis_url: str, database_url: str, env: dict[str, str] | None = None
    ):
        self.creds = Credentials.fresh()
        self.ports = Ports.free()
        self.web_url, self.twilio_url = self.ports.web_url, self.ports.twilio_url
        self.openai_url, self.realtime_url = self.ports.openai_url, self.ports.realtime_url
        self.auth_token = self.creds.auth_token
        self.database_url = database_url
        self.redis_url = redis_url
        super().__init__(
            log_dir,
            stack_environment(clean_environment(), self.ports, self.creds, redis_url=redis_url),
        )
        self.env.update(
            {
                "DATABASE_URL": database_url,
                "STAFF_NUMBERS": ",".join(STAFF),
                "STAFF_NOTIFY_TO": NOTIFY,
                "BOT_PROJECTED_ADDRESS": BOT_NUMBER,
                "LOG_FORMAT": "json",
                "TASK_RETRY_BACKOFF_SECONDS": "0.2",
                # Tests sign in often from one address; test_login checks the real limits.
                "STAFF_LOGIN_IP_LIMIT": "500 per hour",
                "STAFF_LOGIN_LIMIT": "100 per 15 minutes",
                **(env or {}),
            }
        )
        self.add(
            services.twilio_sim(
                self.ports.twilio, self.creds, webhook_url=self.web_url + "/twilio/convo"
            ),
            services.openai_sim(self.ports.openai, self.creds.openai_key),
            services.realtime_sim(self.ports.realtime, self.creds.openai_key, 4.0),
            services.web(self.ports.web),
            services.relay(self.ports.relay),
            services.worker("worker", 2),
        )

    def start(self, *names: str, wait: bool = True) -> ConsoleStack:
        super().start(*names, wait=wait)
        return self

    # -- a phone texting the bot ----------------------------------------------------------
    def text(self, sender: str, body: str, conversation_sid: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"from": sender, "body": body}
        if conversation_sid:
            payload["conversation_sid"] = conversation_sid
        return http_json("POST", self.twilio_url + "/_sandbox/inbound", payload)

    def state(self) -> dict[str, Any]:
        return http_json("GET", self.twilio_url + "/_sandbox/state")

    def thread(self, conversation_sid: str) -> list[dict[str, Any]]:
        convs = self.state()["conversations"]
        conv = next(c for c in convs if c["sid"] == conversation_sid)
        return conv["messages"]

    def outcome(self, message_sid: str, timeout: float = 30.0) -> str:
        """The worker's final word on a message (from its log)."""
        record = wait_for(
            lambda: next(
                (
                    r
                    for r in self.log_records("worker")
                    if r.get("message_sid") == message_sid and r.get("msg") == "event handled"
                ),
                None,
            ),
            timeout=timeout,
        )
        return str(record["outcome"])

    def start_sandbox_call(self, *args: str) -> subprocess.Popen[str]:
        """``python -m sandbox call`` against this stack, running (see :meth:`call_sid_of`)."""
        cmd = [PYTHON, "-m", "sandbox", "call", "--web", self.web_url,
               "--auth-token", self.auth_token, "--redis-url", self.redis_url,
               "--max-seconds", "45", *args]  # fmt: skip
        return subprocess.Popen(
            cmd, env=clean_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def call_sid_of(self, call: subprocess.Popen[str]) -> str:
        """Wait for the sandbox call to end; its CallSid."""
        out, err = call.communicate(timeout=120)
        assert call.returncode == 0, out + err + self.logs()
        return out.split()[1].rstrip(":")

    def sandbox_call(self, *args: str) -> str:
        """A whole sandbox call; its CallSid."""
        return self.call_sid_of(self.start_sandbox_call(*args))

    # -- staff ----------------------------------------------------------------------------
    def staff(self, number: str = STAFF[0]) -> StaffClient:
        client = StaffClient(self.web_url)
        sign_in(client, self.twilio_url, number)
        return client
