"""``sandbox.dial`` posts the voice webhook as Twilio does, to a recording HTTP server.

Twilio's ``Direction`` is ``inbound`` for a call to our number and ``outbound-api`` for one
placed through the Calls API; ``AnsweredBy`` comes only with AMD on API calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from twilio.request_validator import RequestValidator

from sandbox import dial
from tests.form_server import Answer, FormServer, Post

TOKEN = "dial-test-token"
BOT, CALLER = "+14082605145", "+14155550100"
STREAM_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect action="https://gw.example/after">'
    '<Stream url="wss://relay.example/token/t"><Parameter name="direction" value="outbound"/>'
    "</Stream></Connect></Response>"
)


@dataclass
class VoiceApp:
    """Answers every POST with ``twiml`` and keeps (url, form, signature)."""

    twiml: str = STREAM_TWIML
    seen: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    url: str = ""

    def _answer(self, post: Post) -> Answer:
        self.seen.append((post.url, post.form, post.signature))
        return 200, "text/xml", self.twiml.encode()


@pytest.fixture
def app() -> Iterator[VoiceApp]:
    voice = VoiceApp()
    server = FormServer(voice._answer)
    voice.url = server.url
    yield voice
    server.stop()


def webhook_form(app: VoiceApp) -> dict[str, str]:
    [(url, form, signature)] = app.seen
    assert RequestValidator(TOKEN).validate(url, form, signature)
    return form


def test_outbound_call_is_outbound_api(app: VoiceApp) -> None:
    target = dial.voice_webhook(
        app.url, TOKEN, call_sid=dial.new_call_sid(), from_=BOT, to=CALLER, outbound=True
    )
    form = webhook_form(app)
    assert (form["Direction"], form["From"], form["To"]) == ("outbound-api", BOT, CALLER)
    assert "AnsweredBy" not in form
    assert target.url == "wss://relay.example/token/t"


def test_inbound_call_is_inbound(app: VoiceApp) -> None:
    dial.voice_webhook(app.url, TOKEN, call_sid=dial.new_call_sid(), from_=CALLER, to=BOT)
    assert webhook_form(app)["Direction"] == "inbound"


def test_answered_by_makes_an_api_call(app: VoiceApp) -> None:
    # only calls placed through the Calls API have answering machine detection
    dial.voice_webhook(
        app.url, TOKEN, call_sid=dial.new_call_sid(), from_=BOT, to=CALLER, answered_by="fax"
    )
    form = webhook_form(app)
    assert (form["Direction"], form["AnsweredBy"]) == ("outbound-api", "fax")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"answered_by": "human", "outbound": False}, "Calls API"),
        ({"answered_by": "machine"}, "'machine'"),
        ({"answered_by": "machine_end_beep", "machine_detection": "Enable"}, "Enable"),
        ({"answered_by": "machine_start", "machine_detection": "DetectMessageEnd"}, "machine"),
        ({"answered_by": "human", "machine_detection": "enable"}, "MachineDetection"),
    ],
)
def test_answers_twilio_never_sends_are_refused(
    app: VoiceApp, kwargs: dict[str, object], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        dial.voice_webhook(
            app.url, TOKEN, call_sid=dial.new_call_sid(), from_=BOT, to=CALLER, **kwargs
        )
    assert app.seen == []


def test_a_webhook_without_a_stream_is_no_stream(app: VoiceApp) -> None:
    app.twiml = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>'
    with pytest.raises(dial.NoStream) as ended:
        dial.voice_webhook(
            app.url, TOKEN, call_sid=dial.new_call_sid(), from_=BOT, to=CALLER, answered_by="fax"
        )
    assert ended.value.verbs == ["Hangup"] and "Hangup" in str(ended.value)
