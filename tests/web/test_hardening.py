"""The web process fails closed: /metrics behind a bearer token, a warning when a router's
X-Forwarded-For is ignored, stream tokens bound to their call (real web process)."""

from __future__ import annotations

import base64
import secrets
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from common.tokens import validate
from sandbox import services
from tests.conftest import REDIS_URL
from tests.sms.stack import post_form
from tests.support import base_env, free_port, start_service, wait_for

KEY = secrets.token_bytes(32)
AUTH_TOKEN = secrets.token_hex(16)
METRICS_TOKEN = secrets.token_urlsafe(24)


class Web:
    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = base_env(
            {
                "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "PUBLIC_BASE_URL": self.url,
                "RELAY_PUBLIC_URL": "wss://relay.gateframes.example",
                "ENCRYPTION_KEY": base64.b64encode(KEY).decode(),
                "REDIS_URL": REDIS_URL,
                "METRICS_TOKEN": METRICS_TOKEN,
                "TRUSTED_PROXY_COUNT": "0",
            }
        )
        self.proc = start_service(services.web(self.port, "web-hardening"), log_dir, env)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    w = Web(tmp_path_factory.mktemp("web-hardening"))
    yield w
    w.proc.stop()


def test_metrics_need_the_bearer_token(web: Web) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        status, body = web.get("/metrics", headers)
        assert status == 401 and b"METRICS_TOKEN" in body and b"gateframes" not in body
    status, body = web.get("/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200 and b"# TYPE" in body
    assert METRICS_TOKEN.encode() not in body
    assert METRICS_TOKEN not in web.proc.log_text()


def test_forwarded_for_without_trusted_proxies_warns_once(web: Web) -> None:
    for _ in range(3):
        web.get("/healthz", {"X-Forwarded-For": "203.0.113.9"})
    wait_for(lambda: "TRUSTED_PROXY_COUNT" in web.proc.log_text())
    web.get("/healthz", {"X-Forwarded-For": "203.0.113.10"})
    assert web.proc.log_text().count("TRUSTED_PROXY_COUNT=0") == 1


def test_stream_token_names_the_call(web: Web) -> None:
    call_sid = "CA" + secrets.token_hex(16)
    form = {"CallSid": call_sid, "From": "+14155550100", "To": "+14082605145"}
    url = web.url + "/twilio/voice"
    sig = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    status, body, _ = post_form(url, form, {"X-Twilio-Signature": sig})
    assert status == 200
    stream = ET.fromstring(body).find("./Connect/Stream")
    assert stream is not None
    token = stream.get("url", "").rsplit("/token/", 1)[1]
    claims = validate(token, KEY, "twilio")
    assert claims.call_sid == call_sid
    assert claims.exp - claims.iat <= 120_000
