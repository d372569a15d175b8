"""The SMS stack as real processes: Twilio and OpenAI simulators, web, Celery worker."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

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


class Stack:
    """Start with :meth:`start`; tests talk to it like Twilio and a phone would."""

    def __init__(
        self,
        log_dir: Path,
        redis_url: str,
        env: dict[str, str] | None = None,
        worker_concurrency: int = 2,
    ):
        self.log_dir = log_dir
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.api_key = "sk-test-" + secrets.token_hex(8)
        self.twilio_port, self.openai_port, self.web_port = free_port(), free_port(), free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.twilio_url = f"http://127.0.0.1:{self.twilio_port}"
        self.openai_url = f"http://127.0.0.1:{self.openai_port}"
        self.env = base_env(
            {
                "TWILIO_ACCOUNT_SID": self.account_sid,
                "TWILIO_AUTH_TOKEN": self.auth_token,
                "TWILIO_API_BASE_URL": self.twilio_url,
                "OPENAI_API_KEY": self.api_key,
                "OPENAI_BASE_URL": self.openai_url + "/v1",
                "OPENAI_CHAT_MODEL": "gpt-5.5",
                "PUBLIC_BASE_URL": self.web_url,
                "REDIS_URL": redis_url,
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
        self.procs: dict[str, Proc] = {}

    # -- processes ---------------------------------------------------------------------------
    def start(self) -> Stack:
        try:
            return self._start()
        except BaseException:
            print(self.logs())
            self.stop()
            raise

    def _start(self) -> Stack:
        self.procs["twilio"] = Proc(
            "twilio-sim",
            [
                PYTHON,
                "-m",
                "sandbox.twilio_sim",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.twilio_port),
                "--account-sid",
                self.account_sid,
                "--auth-token",
                self.auth_token,
                "--webhook-url",
                self.web_url + "/twilio/convo",
            ],
            self.env,
            self.log_dir,
        )
        self.procs["openai"] = Proc(
            "openai-sim",
            [
                PYTHON,
                "-m",
                "sandbox.openai_sim",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.openai_port),
                "--api-key",
                self.api_key,
            ],
            self.env,
            self.log_dir,
        )
        self.start_web()
        self.start_worker()
        for name, port in (("twilio", self.twilio_port), ("openai", self.openai_port)):
            wait_port(port, proc=self.procs[name].popen)
        wait_port(self.web_port, proc=self.procs["web"].popen)
        self.wait_worker_ready()
        return self

    def start_web(self) -> None:
        self.procs["web"] = Proc(
            "web",
            [PYTHON, "-m", "webhooks", "--host", "127.0.0.1", "--port", str(self.web_port)],
            self.env,
            self.log_dir,
        )

    def start_worker(self, name: str = "worker") -> None:
        args = celery_worker_args(name, self.worker_concurrency)
        self.procs[name] = Proc(name, args, self.env, self.log_dir)

    def wait_worker_ready(self, name: str = "worker", timeout: float = 60.0) -> None:
        wait_for(lambda: "ready." in self.procs[name].log_text(), timeout=timeout)

    def kill_worker(self, name: str = "worker") -> None:
        """SIGKILL the worker and its pool children, as an OOM killer or a host crash would."""
        kill_tree(self.procs[name].popen.pid)
        self.procs[name].popen.wait()

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"==== {n} ====\n{p.log_text()[-6000:]}" for n, p in self.procs.items())

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
        out = []
        for name, proc in self.procs.items():
            if not name.startswith(prefix):
                continue
            for line in proc.log_text().splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        out.append(json.loads(line))
        return out

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


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its children (read from /proc, no extra packages)."""
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            children.append(int(entry.name))
    for victim in [*children, pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
