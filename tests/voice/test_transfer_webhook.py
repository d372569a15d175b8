"""/twilio/voice/transfer, /whisper, /transfer/after and /message on a real web process."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis
from twilio.request_validator import RequestValidator

from common import call_keys
from sandbox import services
from tests.conftest import REDIS_URL
from tests.sms.stack import post_form
from tests.support import base_env, free_port, start_service, wait_for

TOKEN = "f" * 32
BOT = "+14082605145"
CALLER = "+14155550100"
STAFF = "+14155550199"
CALL_SID = "CA" + "7" * 32
REASON = "wants a <quote> & an install date"


class Web:
    def __init__(self, log_dir: Path, staff_number: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = base_env(
            {
                "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
                "TWILIO_AUTH_TOKEN": TOKEN,
                "PUBLIC_BASE_URL": self.url,
                "REDIS_URL": REDIS_URL,
                "BOT_PROJECTED_ADDRESS": BOT,
                "STAFF_TRANSFER_NUMBER": staff_number,
                "STAFF_TRANSFER_TIMEOUT_SECONDS": "25",
            }
        )
        self.proc = start_service(services.web(self.port, "web-transfer"), log_dir, env)

    def post(
        self, path: str, form: dict[str, str], signature: str | None = None
    ) -> tuple[int, str]:
        url = self.url + path
        sig = RequestValidator(TOKEN).compute_signature(url, form)
        status, body, _ = post_form(url, form, {"X-Twilio-Signature": signature or sig})
        return status, body


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    w = Web(tmp_path_factory.mktemp("transfer"), STAFF)
    yield w
    w.proc.stop()


def parent_form(**extra: str) -> dict[str, str]:
    """What Twilio posts about the caller's call (an inbound call to the bot number)."""
    return {
        "CallSid": CALL_SID,
        "AccountSid": "AC" + "1" * 32,
        "From": CALLER,
        "To": BOT,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        **extra,
    }


def verbs(xml: str) -> list[ET.Element]:
    root = ET.fromstring(xml)
    assert root.tag == "Response"
    return list(root)


def test_transfer_dials_staff_from_the_bot_number(web: Web, redis_client: redis.Redis) -> None:
    call_keys.save_transfer(redis_client, CALL_SID, CALLER, REASON)
    status, body = web.post("/twilio/voice/transfer", parent_form())
    assert status == 200
    [dial] = verbs(body)
    assert dial.tag == "Dial"
    assert dial.attrib == {
        "callerId": BOT,
        "timeout": "25",
        "action": web.url + "/twilio/voice/transfer/after",
        "method": "POST",
        "answerOnBridge": "true",
    }
    [number] = list(dial)
    assert number.tag == "Number" and number.text == STAFF
    assert number.get("url") == web.url + "/twilio/voice/whisper?" + urlencode({"call": CALL_SID})
    assert "quote" not in body and "install" not in body  # the reason is for staff only


def test_whisper_tells_staff_who_calls_and_why(web: Web, redis_client: redis.Redis) -> None:
    call_keys.save_transfer(redis_client, CALL_SID, CALLER, REASON)
    path = "/twilio/voice/whisper?" + urlencode({"call": CALL_SID})
    staff_leg = {"CallSid": "CA" + "8" * 32, "From": BOT, "To": STAFF, "CallStatus": "in-progress"}
    status, body = web.post(path, staff_leg)
    assert status == 200
    [say] = verbs(body)
    assert say.tag == "Say"
    assert "4 1 5, 5 5 5, 0 1 0 0" in say.text and REASON in say.text


def test_whisper_without_details_still_speaks(web: Web) -> None:
    path = "/twilio/voice/whisper?" + urlencode({"call": "CA" + "9" * 32})
    status, body = web.post(path, {"CallSid": "CA" + "8" * 32})
    [say] = verbs(body)
    assert status == 200 and "an unknown number" in say.text and "no reason given" in say.text


def test_whisper_for_another_call_needs_its_own_signature(
    web: Web, redis_client: redis.Redis
) -> None:
    call_keys.save_transfer(redis_client, CALL_SID, CALLER, REASON)
    signed_for = web.url + "/twilio/voice/whisper?" + urlencode({"call": "CA" + "9" * 32})
    form = {"CallSid": "CA" + "8" * 32}
    forged = RequestValidator(TOKEN).compute_signature(signed_for, form)
    status, body = web.post("/twilio/voice/whisper?" + urlencode({"call": CALL_SID}), form, forged)
    assert status == 403 and REASON not in body


@pytest.mark.parametrize(
    "path",
    [
        "/twilio/voice/transfer",
        "/twilio/voice/whisper?call=" + CALL_SID,
        "/twilio/voice/transfer/after",
        "/twilio/voice/message",
    ],
)
def test_forged_signatures_are_refused(web: Web, path: str) -> None:
    status, body = web.post(path, parent_form(DialCallStatus="completed"), signature="forged")
    assert status == 403 and "<Response" not in body


def test_a_bridged_transfer_hangs_up(web: Web, redis_client: redis.Redis) -> None:
    status, body = web.post("/twilio/voice/transfer/after", parent_form(DialCallStatus="completed"))
    assert status == 200 and [v.tag for v in verbs(body)] == ["Hangup"]
    [note] = call_keys.read_notes(redis_client, CALL_SID)
    assert (note["kind"], note["status"]) == ("transfer", "completed")


@pytest.mark.parametrize("dial_status", ["no-answer", "busy", "failed", "canceled", ""])
def test_a_missed_transfer_offers_a_message(
    web: Web, redis_client: redis.Redis, dial_status: str
) -> None:
    call_keys.save_transfer(redis_client, CALL_SID, CALLER, REASON)
    status, body = web.post("/twilio/voice/transfer/after", parent_form(DialCallStatus=dial_status))
    assert status == 200
    said, record, fallback, hangup = verbs(body)
    assert said.tag == "Say" and said.text.startswith("Sorry, nobody could take your call")
    assert record.tag == "Record"
    assert record.attrib == {
        "maxLength": "120",
        "playBeep": "true",
        "action": web.url + "/twilio/voice/message",
        "method": "POST",
    }
    assert (fallback.tag, hangup.tag) == ("Say", "Hangup")  # nothing recorded: still not silent
    assert "quote" not in body
    [note] = call_keys.read_notes(redis_client, CALL_SID)
    assert (note["kind"], note["status"]) == ("transfer", dial_status)


def test_a_recorded_message_is_kept_for_the_summary(web: Web, redis_client: redis.Redis) -> None:
    recording = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "2" * 32
    form = parent_form(RecordingUrl=recording, RecordingDuration="14", RecordingSid="RE" + "2" * 32)
    status, body = web.post("/twilio/voice/message", form)
    said, hangup = verbs(body)
    assert status == 200 and said.text.startswith("Thank you") and hangup.tag == "Hangup"
    [note] = call_keys.read_notes(redis_client, CALL_SID)
    assert note == {
        "kind": "recording",
        "at": note["at"],
        "url": recording,
        "duration": "14",
        "recording_sid": "RE" + "2" * 32,
    }
    logged = wait_for(
        lambda: [ln for ln in web.proc.log_text().splitlines() if "message recorded" in ln]
    )
    assert recording in logged[-1] and CALL_SID in logged[-1]


def test_a_message_webhook_without_a_recording_still_says_goodbye(
    web: Web, redis_client: redis.Redis
) -> None:
    status, body = web.post("/twilio/voice/message", parent_form(RecordingUrl="javascript:x"))
    assert status == 200 and [v.tag for v in verbs(body)] == ["Say", "Hangup"]
    assert call_keys.read_notes(redis_client, CALL_SID) == []


@pytest.fixture(scope="module")
def web_without_staff(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    w = Web(tmp_path_factory.mktemp("transfer-unset"), "")
    yield w
    w.proc.stop()


def test_transfer_without_a_staff_number_takes_a_message(web_without_staff: Web) -> None:
    status, body = web_without_staff.post("/twilio/voice/transfer", parent_form())
    assert status == 200
    assert [v.tag for v in verbs(body)] == ["Say", "Record", "Say", "Hangup"]
