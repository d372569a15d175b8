"""/twilio/voice and /twilio/voice/after on a real web process."""

from __future__ import annotations

import base64
import secrets
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from common.tokens import validate
from sandbox import services
from tests.conftest import REDIS_URL
from tests.sms.stack import post_form
from tests.support import base_env, free_port, start_service, wait_for

KEY = secrets.token_bytes(32)
TOKEN = secrets.token_hex(16)
BOT = "+14082605145"


class Web:
    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.relay = "wss://relay.gateframes.example"
        env = base_env(
            {
                "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
                "TWILIO_AUTH_TOKEN": TOKEN,
                "PUBLIC_BASE_URL": self.url,
                "RELAY_PUBLIC_URL": self.relay,
                "ENCRYPTION_KEY": base64.b64encode(KEY).decode(),
                "REDIS_URL": REDIS_URL,
            }
        )
        self.proc = start_service(services.web(self.port, "web-voice"), log_dir, env)

    def post(self, path: str, form: dict[str, str], signature: str | None = None):
        url = self.url + path
        sig = (
            RequestValidator(TOKEN).compute_signature(url, form) if signature is None else signature
        )
        return post_form(url, form, {"X-Twilio-Signature": sig})

    def get(self, path: str, query: dict[str, str]) -> tuple[int, str]:
        url = self.url + path + "?" + urllib.parse.urlencode(query)
        sig = RequestValidator(TOKEN).compute_signature(url, {})
        req = urllib.request.Request(url, headers={"X-Twilio-Signature": sig})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    w = Web(tmp_path_factory.mktemp("voice"))
    yield w
    w.proc.stop()


def stream_of(xml: str) -> tuple[ET.Element, ET.Element]:
    root = ET.fromstring(xml)
    connect = root.find("Connect")
    assert connect is not None
    stream = connect.find("Stream")
    assert stream is not None
    return connect, stream


def test_inbound_call_twiml(web: Web) -> None:
    status, body, headers = web.post(
        "/twilio/voice",
        {
            "CallSid": "CA" + "a" * 32,
            "From": "+14155550100",
            "To": BOT,
            "Direction": "inbound",
            "CallStatus": "ringing",
            "AccountSid": "AC" + "1" * 32,
        },
    )
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    connect, stream = stream_of(body)
    assert connect.get("action") == web.url + "/twilio/voice/after"
    url = stream.get("url")
    assert url.startswith(web.relay + "/token/") and "?" not in url
    claims = validate(url.rsplit("/", 1)[1], KEY, "twilio")
    assert claims.exp - claims.iat <= 300_000
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["direction"] == "inbound"
    assert params["callSid"] == "CA" + "a" * 32
    assert "amd" not in params
    assert all(len(k) + len(v) < 500 for k, v in params.items())


def test_outbound_call_with_machine_detection(web: Web) -> None:
    _, body, _ = web.post(
        "/twilio/voice",
        {
            "CallSid": "CA" + "b" * 32,
            "From": BOT,
            "To": "+14155550100",
            "AnsweredBy": "machine_end_beep",
            "Direction": "outbound-api",
        },
    )
    _, stream = stream_of(body)
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["direction"] == "outbound"
    assert params["amd"] == "machine_end_beep"


def outbound_answered_by(web: Web, answered_by: str, call_sid: str) -> tuple[int, str]:
    status, body, _ = web.post(
        "/twilio/voice",
        {
            "CallSid": call_sid,
            "AccountSid": "AC" + "1" * 32,
            "From": BOT,
            "To": "+14155550100",
            "AnsweredBy": answered_by,
            "Direction": "outbound-api",
            "CallStatus": "in-progress",
        },
    )
    return status, body


def voice_outcomes(web: Web) -> dict[str, float]:
    """The web's ``gateframes_webhook_events`` counters for route ``voice``, from /metrics."""
    with urllib.request.urlopen(web.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "gateframes_webhook_events"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("route") == "voice"
    }


def test_fax_is_hung_up_on_at_once(web: Web) -> None:
    sid = "CA" + "fa" * 16
    before = voice_outcomes(web).get("fax", 0)
    status, body = outbound_answered_by(web, "fax", sid)
    root = ET.fromstring(body)
    assert status == 200 and [c.tag for c in root] == ["Hangup"]  # no stream, no token
    assert voice_outcomes(web).get("fax", 0) == before + 1
    logged = wait_for(
        lambda: [ln for ln in web.proc.log_text().splitlines() if "fax machine answered" in ln]
    )
    assert sid in logged[-1]


@pytest.mark.parametrize(
    "answered_by", ["machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other"]
)
def test_machine_answers_are_voicemail_calls(web: Web, answered_by: str) -> None:
    # machine_start is what MachineDetection=Enable reports: a machine, like machine_end_*
    before = voice_outcomes(web).get("connected_voicemail", 0)
    _, body = outbound_answered_by(web, answered_by, "CA" + "9" * 32)
    _, stream = stream_of(body)
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert (params["amd"], params["direction"]) == (answered_by, "outbound")
    assert voice_outcomes(web).get("connected_voicemail", 0) == before + 1


@pytest.mark.parametrize("answered_by", ["human", "unknown"])
def test_human_and_unknown_keep_the_normal_call(web: Web, answered_by: str) -> None:
    before = voice_outcomes(web)
    _, body = outbound_answered_by(web, answered_by, "CA" + "8" * 32)
    _, stream = stream_of(body)
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert (params["amd"], params["direction"]) == (answered_by, "outbound")
    after = voice_outcomes(web)
    assert after.get("connected_outbound", 0) == before.get("connected_outbound", 0) + 1
    assert after.get("connected_voicemail", 0) == before.get("connected_voicemail", 0)


def test_get_webhook_is_signed_too(web: Web) -> None:
    status, body = web.get(
        "/twilio/voice", {"CallSid": "CA" + "c" * 32, "From": "+1415", "To": "+1999"}
    )
    assert status == 200
    _, stream = stream_of(body)
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["direction"] == "unknown"


def test_each_call_gets_a_fresh_token(web: Web) -> None:
    form = {"CallSid": "CA" + "d" * 32, "From": "+14155550100", "To": BOT}
    urls = {stream_of(web.post("/twilio/voice", form)[1])[1].get("url") for _ in range(3)}
    assert len(urls) == 3


def test_forged_voice_webhook_gets_403_and_no_token(web: Web) -> None:
    status, body, _ = web.post(
        "/twilio/voice", {"CallSid": "CA1", "From": "+1", "To": BOT}, signature="Zm9yZ2Vk"
    )
    assert status == 403 and "/token/" not in body
    status, body, _ = web.post("/twilio/voice/after", {"CallSid": "CA1"}, signature="")
    assert status == 403


def test_after_stream_apologises_unless_ended_on_purpose(web: Web) -> None:
    r = redis.Redis.from_url(REDIS_URL)
    deliberate, failed = "CA" + "e" * 32, "CA" + "f" * 32
    r.set(f"gf:call_end:{deliberate}", "voicemail_left", ex=60)
    _, body, _ = web.post("/twilio/voice/after", {"CallSid": deliberate})
    root = ET.fromstring(body)
    assert [c.tag for c in root] == ["Hangup"]
    _, body, _ = web.post("/twilio/voice/after", {"CallSid": failed})
    root = ET.fromstring(body)
    assert [c.tag for c in root] == ["Say", "Hangup"]
    assert "Sorry" in root.find("Say").text
