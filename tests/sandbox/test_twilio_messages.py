"""The Twilio simulator's Programmable Messaging (Api 2010 Messages), through the twilio SDK."""

from __future__ import annotations

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from tests.sandbox.conftest import BOT_NUMBER, TwilioSim

OWNER = "+14155550123"


def test_sms_create_and_fetch(twilio: TwilioSim) -> None:
    client = twilio.client()
    sent = client.messages.create(to=OWNER, from_=BOT_NUMBER, body="Voicemail left for you")
    assert sent.sid.startswith("SM") and len(sent.sid) == 34
    assert (sent.to, sent.from_, sent.body, sent.status) == (
        OWNER,
        BOT_NUMBER,
        "Voicemail left for you",
        "queued",
    )
    assert (sent.direction, sent.num_segments) == ("outbound-api", "1")
    assert client.messages(sent.sid).fetch().body == "Voicemail left for you"
    [stored] = twilio.state()["sms"]
    assert stored["sid"] == sent.sid


def test_long_sms_counts_segments(twilio: TwilioSim) -> None:
    sent = twilio.client().messages.create(to=OWNER, from_=BOT_NUMBER, body="x" * 400)
    assert sent.num_segments == "3"  # 153 characters per part of a concatenated SMS


@pytest.mark.parametrize(
    "form, code",
    [
        ({"From": BOT_NUMBER, "Body": "hi"}, 21604),
        ({"To": OWNER, "Body": "hi"}, 21603),
        ({"To": OWNER, "From": BOT_NUMBER}, 21602),
        ({"To": "555-0100", "From": BOT_NUMBER, "Body": "hi"}, 21211),
        ({"To": OWNER, "From": "+14155550999", "Body": "hi"}, 21606),
        ({"To": OWNER, "From": BOT_NUMBER, "Body": "x" * 1601}, 21617),
    ],
)
def test_sms_refusals_use_twilio_codes(twilio: TwilioSim, form: dict, code: int) -> None:
    resp = requests.post(
        f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json",
        data=form,
        auth=(twilio.account_sid, twilio.auth_token),
        timeout=10,
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == code and resp.json()["message"]
    assert twilio.state()["sms"] == []


def test_sms_fault_reaches_the_sdk_as_an_exception(twilio: TwilioSim) -> None:
    fault = {"method": "POST", "path_contains": "/Messages.json", "status": 503, "count": 1}
    assert twilio.control("POST", "faults", fault)[0] == 201
    with pytest.raises(TwilioRestException) as failed:
        twilio.client().messages.create(to=OWNER, from_=BOT_NUMBER, body="hi")
    assert failed.value.status == 503
