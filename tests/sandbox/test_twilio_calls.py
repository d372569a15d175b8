"""The Calls simulator's answering machine detection and CreateCall checks, over real HTTP.

AnsweredBy must follow from MachineDetection as on Twilio
(https://www.twilio.com/docs/voice/answering-machine-detection), and a bad MachineDetection
configuration is Twilio's error 21234.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from tests.sandbox.conftest import BOT_NUMBER, TwilioSim

ALICE = "+14155550100"
VOICE = "/twilio/voice"


def _call(twilio: TwilioSim, **kwargs: Any) -> str:
    url = twilio.receiver.url + VOICE
    return twilio.client().calls.create(to=ALICE, from_=BOT_NUMBER, url=url, **kwargs).sid


def _answer(twilio: TwilioSim, sid: str, **payload: Any) -> tuple[int, Any]:
    return twilio.control("POST", f"calls/{sid}", {"status": "in-progress", **payload})


def _create_form(twilio: TwilioSim, form: dict[str, str]) -> requests.Response:
    # the SDK insists on Url/Twiml/ApplicationSid and types some fields, so post the form
    return requests.post(
        f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Calls.json",
        data=form,
        auth=(twilio.account_sid, twilio.auth_token),
        timeout=5,
    )


@pytest.mark.parametrize(
    ("machine_detection", "answered_by"),
    [
        ("Enable", "machine_start"),
        ("Enable", "human"),
        ("Enable", "fax"),
        ("Enable", "unknown"),
        ("DetectMessageEnd", "machine_end_beep"),
        ("DetectMessageEnd", "machine_end_silence"),
        ("DetectMessageEnd", "machine_end_other"),
        ("DetectMessageEnd", "human"),
        ("DetectMessageEnd", "fax"),
        ("DetectMessageEnd", "unknown"),
    ],
)
def test_documented_answered_by_reaches_the_voice_webhook(
    twilio: TwilioSim, machine_detection: str, answered_by: str
) -> None:
    sid = _call(twilio, machine_detection=machine_detection)
    status, answered = _answer(twilio, sid, answered_by=answered_by)
    assert (status, answered["webhook_status"]) == (200, 200)
    [hook] = twilio.receiver.requests
    assert (hook.form["AnsweredBy"], hook.form["Direction"]) == (answered_by, "outbound-api")
    assert twilio.client().calls(sid).fetch().answered_by == answered_by


@pytest.mark.parametrize(
    ("machine_detection", "answered_by"),
    [
        ("Enable", "machine_end_beep"),  # only DetectMessageEnd waits for the greeting's end
        ("Enable", "machine_end_silence"),
        ("DetectMessageEnd", "machine_start"),  # only Enable reports the machine at once
        ("DetectMessageEnd", "machine"),  # the legacy IfMachine value, not an AMD one
        ("Enable", "voicemail"),
        (None, "human"),  # no detection: no AnsweredBy at all
        (None, "machine_start"),
    ],
)
def test_answered_by_that_does_not_fit_the_call_is_refused(
    twilio: TwilioSim, machine_detection: str | None, answered_by: str
) -> None:
    kwargs = {"machine_detection": machine_detection} if machine_detection else {}
    sid = _call(twilio, **kwargs)
    status, refused = _answer(twilio, sid, answered_by=answered_by)
    assert status == 400 and answered_by in refused["error"]
    assert twilio.receiver.requests == []  # nothing was posted to the app
    assert twilio.client().calls(sid).fetch().status == "queued"  # and nothing changed


def test_an_amd_call_is_answered_with_a_result(twilio: TwilioSim) -> None:
    sid = _call(twilio, machine_detection="DetectMessageEnd")
    status, refused = _answer(twilio, sid)
    assert status == 400 and "answered_by" in refused["error"]
    assert twilio.control("POST", f"calls/{sid}", {"status": "ringing"})[0] == 200
    status, refused = twilio.control(
        "POST", f"calls/{sid}", {"status": "ringing", "answered_by": "human"}
    )
    assert status == 400  # AMD reports on answer, not while ringing
    assert _answer(twilio, sid, answered_by="human")[0] == 200


def test_a_call_without_detection_has_no_answered_by(twilio: TwilioSim) -> None:
    sid = _call(twilio)
    assert _answer(twilio, sid)[0] == 200
    [hook] = twilio.receiver.requests
    assert "AnsweredBy" not in hook.form and hook.form["Direction"] == "outbound-api"


def test_send_digits_switches_machine_detection_off(twilio: TwilioSim) -> None:
    # Twilio: "If both SendDigits and MachineDetection are provided, MachineDetection is ignored"
    sid = _call(twilio, machine_detection="Enable", send_digits="W1234#")
    status, _ = _answer(twilio, sid, answered_by="machine_start")
    assert status == 400
    assert _answer(twilio, sid)[0] == 200


@pytest.mark.parametrize(
    "extra",
    [
        {"MachineDetection": "enable"},  # the documented values are case-sensitive names
        {"MachineDetection": "DetectMessageStart"},
        {"MachineDetection": "true"},
        {"MachineDetection": "Enable", "MachineDetectionTimeout": "2"},
        {"MachineDetection": "Enable", "MachineDetectionTimeout": "60"},
        {"MachineDetection": "Enable", "MachineDetectionTimeout": "ten"},
        {"MachineDetection": "Enable", "MachineDetectionSpeechThreshold": "999"},
        {"MachineDetection": "Enable", "MachineDetectionSpeechEndThreshold": "5001"},
        {"MachineDetection": "Enable", "MachineDetectionSilenceTimeout": "1999"},
    ],
)
def test_bad_machine_detection_configuration_is_21234(
    twilio: TwilioSim, extra: dict[str, str]
) -> None:
    form = {"To": ALICE, "From": BOT_NUMBER, "Url": twilio.receiver.url + VOICE, **extra}
    resp = _create_form(twilio, form)
    body = resp.json()
    assert (resp.status_code, body["code"], body["status"]) == (400, 21234, 400)
    assert body["message"].startswith("Invalid Machine Detection configuration value")
    assert body["more_info"] == "https://www.twilio.com/docs/errors/21234"
    assert twilio.state()["calls"] == []


def test_amd_tuning_within_range_is_accepted(twilio: TwilioSim) -> None:
    sid = _call(
        twilio,
        machine_detection="DetectMessageEnd",
        machine_detection_timeout=59,
        machine_detection_speech_threshold=1000,
        machine_detection_speech_end_threshold=5000,
        machine_detection_silence_timeout=2000,
    )
    assert _answer(twilio, sid, answered_by="machine_end_beep")[0] == 200


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": BOT_NUMBER, "Url": "https://gateway.example/twilio/voice"}, 21201),
        ({"To": "", "From": BOT_NUMBER, "Url": "https://gateway.example/twilio/voice"}, 21201),
        ({"To": ALICE, "Url": "https://gateway.example/twilio/voice"}, 21213),
        ({"To": ALICE, "From": BOT_NUMBER}, 21205),
        ({"To": ALICE, "From": BOT_NUMBER, "Url": ""}, 21205),
        ({"To": ALICE, "From": BOT_NUMBER, "ApplicationSid": "AP123"}, 20001),
    ],
)
def test_create_call_requires_to_from_and_instructions(
    twilio: TwilioSim, form: dict[str, str], code: int
) -> None:
    resp = _create_form(twilio, form)
    assert (resp.status_code, resp.json()["code"]) == (400, code)
    assert twilio.state()["calls"] == []


def test_application_sid_alone_is_enough_instructions(twilio: TwilioSim) -> None:
    resp = _create_form(
        twilio, {"To": ALICE, "From": BOT_NUMBER, "ApplicationSid": "AP" + "a" * 32}
    )
    assert resp.status_code == 201 and resp.json()["status"] == "queued"


def test_sdk_sees_21234_as_a_rest_exception(twilio: TwilioSim) -> None:
    with pytest.raises(TwilioRestException) as refused:
        _call(twilio, machine_detection="Detect")
    assert (refused.value.status, refused.value.code) == (400, 21234)
