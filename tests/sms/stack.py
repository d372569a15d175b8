"""The SMS stack as real processes: Twilio and OpenAI simulators, web, Celery worker (started by
:mod:`sandbox.stack`), and what a test does with it: text it, fault it, read its outcomes."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from sandbox import services
from sandbox.services import Credentials, Ports, clean_environment, free_port, stack_environment
from sandbox.stack import ProcessStack
from tests.support import http_json, wait_for

BOT = "gateframes-bot"
#: A worker's last word on a message: nothing more will happen to it in that delivery.
FINAL_OUTCOMES = {
    "replied",
    "already_replied",
    "group_not_mentioned",
    "skipped",
    "maintenance",
    "failed",
    "lock_timeout",
    "command_call",
    "command_group",
}
#: Authors allowed to use @call and @group in the SMS stacks (ALICE and a second staff phone).
STAFF = ("+14155550100", "+14155550199")
BOT_NUMBER = "+14082605145"


def post_form(
    url: str, form: dict[str, str], headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, str, dict[str, str]]:
    req = urllib.request.Request(
        url,
        data=urlencode(form).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


class Stack(ProcessStack):
    """The SMS processes (:mod:`sandbox.stack`) with SMS-test timings; start with
    :meth:`start`; tests talk to it like Twilio and a phone would.

    ``redis_url=None``: the stack runs a private redis-server (``persistent``: with an
    fsync-always AOF) that :meth:`stop_redis` / :meth:`start_redis` take down and bring back."""

    def __init__(
        self,
        log_dir: Path,
        redis_url: str | None,
        env: dict[str, str] | None = None,
        worker_concurrency: int = 2,
        *,
        persistent_redis: bool = False,
    ):
        self.creds = Credentials.fresh()
        self.ports = Ports.free()
        self.account_sid, self.auth_token = self.creds.account_sid, self.creds.auth_token
        self.api_key = self.creds.openai_key
        self.twilio_port, self.openai_port = self.ports.twilio, self.ports.openai
        self.web_port = self.ports.web
        self.web_url, self.twilio_url = self.ports.web_url, self.ports.twilio_url
        self.openai_url = self.ports.openai_url
        redis_port = free_port() if redis_url is None else None
        self.redis_url = redis_url or f"redis://127.0.0.1:{redis_port}/0"
        super().__init__(
            log_dir,
            stack_environment(
                clean_environment(), self.ports, self.creds, redis_url=self.redis_url
            ),
        )
        self.env.update(
            {
                "OPENAI_CHAT_MODEL": "gpt-5.5",
                "SPOOL_DIR": str(log_dir / "spool"),
                "SPOOL_DRAIN_INTERVAL_SECONDS": "0.5",
                "TASK_RETRY_BACKOFF_SECONDS": "0.2",
                "TASK_MAX_RETRIES": "3",
                "CHAT_TIMEOUT_SECONDS": "3",
                "LOG_FORMAT": "json",
                "STAFF_NUMBERS": ",".join(STAFF),
                **(env or {}),
            }
        )
        self.worker_concurrency = worker_concurrency
        if redis_port is not None:
            data = log_dir / "redis"
            data.mkdir(exist_ok=True)
            self.add(services.redis_server(redis_port, data, persistent_redis))
        self.add(
            services.twilio_sim(
                self.twilio_port, self.creds, webhook_url=self.web_url + "/twilio/convo"
            ),
            services.openai_sim(self.openai_port, self.api_key),
            services.web(self.web_port),
            services.worker("worker", worker_concurrency),
        )

    # -- processes ---------------------------------------------------------------------------
    def start(self, *names: str, wait: bool = True) -> Stack:
        if not names and "redis" in self.services and not self.alive("redis"):
            super().start("redis")  # the others connect to it as they start
        super().start(*names, wait=wait)
        return self

    def start_worker(
        self, name: str = "worker", env: dict[str, str] | None = None, wait: bool = True
    ) -> None:
        """Another Celery worker (its own log, so ``log_records("worker")`` sees them all)."""
        self.run(services.worker(name, self.worker_concurrency, env), wait=wait)

    def stop_redis(self) -> None:
        """Take the stack's private Redis down (SIGTERM: an AOF is flushed, as on a restart)."""
        self.stop("redis")

    def start_redis(self) -> None:
        self.start("redis")

    # -- acting like Twilio and a phone --------------------------------------------------------
    def text(
        self,
        sender: str,
        body: str,
        *,
        group: list[str] | None = None,
        conversation_sid: str | None = None,
        media: list[dict] | None = None,
    ) -> dict:
        payload: dict[str, Any] = {"from": sender, "body": body}
        if group:
            payload["group"] = group
        if conversation_sid:
            payload["conversation_sid"] = conversation_sid
        if media:
            payload["media"] = media
        return http_json("POST", self.twilio_url + "/_sandbox/inbound", payload)

    def state(self) -> dict:
        return http_json("GET", self.twilio_url + "/_sandbox/state")

    def reply_counts(self) -> dict[str, int]:
        """How many bot replies each message got (by the ``reply_to`` the task stamps)."""
        counts: dict[str, int] = {}
        for conv in self.state()["conversations"]:
            for m in conv["messages"]:
                if m["author"] == BOT:
                    ref = json.loads(m.get("attributes") or "{}").get("reply_to")
                    counts[ref] = counts.get(ref, 0) + 1
        return counts

    def messages(self, conversation_sid: str) -> list[dict]:
        convs = self.state()["conversations"]
        conv = (
            convs[conversation_sid]
            if isinstance(convs, dict)
            else next(c for c in convs if c["sid"] == conversation_sid)
        )
        return conv["messages"]

    def bot_messages(self, conversation_sid: str) -> list[dict]:
        return [m for m in self.messages(conversation_sid) if m["author"] == BOT]

    def wait_bot_messages(
        self, conversation_sid: str, count: int = 1, timeout: float = 30.0
    ) -> list[dict]:
        return wait_for(
            lambda: (lambda ms: ms if len(ms) >= count else None)(
                self.bot_messages(conversation_sid)
            ),
            timeout=timeout,
        )

    def chat_requests(self) -> list[dict]:
        return http_json("GET", self.openai_url + "/_sandbox/requests")

    def twilio_fault(self, **fault: Any) -> None:
        http_json("POST", self.twilio_url + "/_sandbox/faults", fault)

    def openai_fault(self, **fault: Any) -> None:
        http_json("POST", self.openai_url + "/_sandbox/faults", fault)

    def signed_post(
        self, form: dict[str, str], path: str = "/twilio/convo", signature: str | None = None
    ) -> tuple[int, str, dict[str, str]]:
        url = self.web_url + path
        sig = (
            signature
            if signature is not None
            else RequestValidator(self.auth_token).compute_signature(url, form)
        )
        return post_form(url, form, {"X-Twilio-Signature": sig})

    def log_records(self, prefix: str = "worker") -> list[dict]:
        """The JSON log records of every process whose name starts with ``prefix``."""
        return super().log_records(prefix)

    def wait_outcome(self, message_sid: str, timeout: float = 30.0) -> dict:
        """Wait until a worker has finished with ``message_sid`` (its final log record): the
        proof that the message was considered, before a test asserts what did not happen."""
        return wait_for(
            lambda: next(
                (
                    r
                    for r in self.log_records()
                    if r.get("message_sid") == message_sid and r.get("outcome") in FINAL_OUTCOMES
                ),
                None,
            ),
            timeout=timeout,
        )

    def wait_web_outcome(self, outcome: str, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until the web process has logged ``count`` webhooks with ``outcome``."""
        wait_for(
            lambda: (
                sum(
                    1
                    for r in self.log_records("web")
                    if r.get("outcome") == outcome or r.get("reason") == outcome
                )
                >= count
            ),
            timeout=timeout,
        )
