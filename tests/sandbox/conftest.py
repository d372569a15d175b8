"""The two simulators as real subprocesses, plus a webhook receiver that records what arrives.

Each simulator is started once per module on a free port (by :mod:`sandbox.stack`, as in every
stack) and reset before every test, so a test sees an empty account and its own faults only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from twilio.rest import Client

from sandbox import services
from sandbox.services import Credentials, clean_environment, free_port
from sandbox.stack import Process, ProcessStack
from sandbox.twilio_sim.sdk import RebasedHttpClient
from tests.form_server import Answer, FormServer, Post
from tests.support import wait_for

BOT_NUMBER = "+14082605145"
SECOND_NUMBER = "+14155559999"


def http_json(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """(status, parsed JSON) without raising on 4xx/5xx."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    return status, json.loads(raw) if raw else None


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class WebhookReceiver:
    """A stand-in for the app's web process: answers 200 and keeps every request."""

    status: int = 200
    requests: list[Received] = field(default_factory=list)

    def start(self) -> WebhookReceiver:
        self.server = FormServer(self._answer)
        self.url = self.server.url
        return self

    def _answer(self, post: Post) -> Answer:
        self.requests.append(Received(post.path, post.headers, post.form))
        return self.status, "text/plain", b"ok"

    def stop(self) -> None:
        self.server.stop()

    def wait(self, count: int, timeout: float = 5.0) -> list[Received]:
        return wait_for(lambda: self.requests if len(self.requests) >= count else None, timeout)


@dataclass
class TwilioSim:
    url: str
    account_sid: str
    auth_token: str
    webhook_url: str
    receiver: WebhookReceiver
    proc: Process

    def client(self, timeout: float = 5.0, token: str | None = None) -> Client:
        http = RebasedHttpClient(self.url, timeout=timeout)
        return Client(self.account_sid, token or self.auth_token, http_client=http)

    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http_json(method, f"{self.url}/_sandbox/{path}", body)

    def state(self) -> dict[str, Any]:
        return self.control("GET", "state")[1]

    def conversation_state(self, sid: str) -> dict[str, Any]:
        return next(c for c in self.state()["conversations"] if c["sid"] == sid)


@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def twilio_proc(
    tmp_path_factory: pytest.TempPathFactory, webhook_receiver: WebhookReceiver
) -> Iterator[TwilioSim]:
    port, creds = free_port(), Credentials.fresh()
    webhook_url = webhook_receiver.url + "/twilio/convo"
    numbers = (BOT_NUMBER, SECOND_NUMBER)
    with ProcessStack(tmp_path_factory.mktemp("twilio-sim"), clean_environment()) as stack:
        service = services.twilio_sim(port, creds, webhook_url=webhook_url, phone_numbers=numbers)
        proc = stack.run(service)
        url = f"http://127.0.0.1:{port}"
        yield TwilioSim(
            url, creds.account_sid, creds.auth_token, webhook_url, webhook_receiver, proc
        )


@pytest.fixture
def twilio(twilio_proc: TwilioSim) -> TwilioSim:
    """The module's Twilio simulator, emptied, with an emptied webhook receiver."""
    assert twilio_proc.control("POST", "reset")[0] == 200
    twilio_proc.receiver.requests.clear()
    twilio_proc.receiver.status = 200
    return twilio_proc


@dataclass
class OpenAISim:
    url: str
    api_key: str
    proc: Process

    def client(self, timeout: float = 5.0, api_key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.url + "/v1",
            api_key=api_key or self.api_key,
            timeout=timeout,
            max_retries=0,
        )

    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http_json(method, f"{self.url}/_sandbox/{path}", body)


@pytest.fixture(scope="module")
def openai_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAISim]:
    port, key = free_port(), Credentials.fresh().openai_key
    with ProcessStack(tmp_path_factory.mktemp("openai-sim"), clean_environment()) as stack:
        proc = stack.run(services.openai_sim(port, key))
        yield OpenAISim(f"http://127.0.0.1:{port}", key, proc)


@pytest.fixture
def oai(openai_proc: OpenAISim) -> OpenAISim:
    assert openai_proc.control("POST", "reset")[0] == 200
    return openai_proc
