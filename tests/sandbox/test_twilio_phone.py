"""The Twilio simulator's calls, faults and phone side (signed webhooks), over real HTTP."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from tests.sandbox.conftest import BOT_NUMBER, SECOND_NUMBER, TwilioSim
from tests.support import PYTHON, Proc, base_env, free_port, wait_for, wait_port

ALICE, BOB = "+14155550100", "+14155550101"
VOICE_URL = "https://gateway.example/twilio/voice"


def test_call_create_fetch_and_hang_up(twilio: TwilioSim) -> None:
    client = twilio.client()
    call = client.calls.create(
        to="+14155550000",
        from_=BOT_NUMBER,
        url=VOICE_URL,
        machine_detection="DetectMessageEnd",
        status_callback_event=["initiated", "completed"],
    )
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert (call.status, call.to, call._from, call.direction) == (
        "queued",
        "+14155550000",
        BOT_NUMBER,
        "outbound-api",
    )
    assert call.date_created is not None  # RFC 2822, parsed by the SDK
    [stored] = twilio.state()["calls"]
    assert (stored["url"], stored["machine_detection"]) == (VOICE_URL, "DetectMessageEnd")
    assert stored["status_callback_event"] == ["initiated", "completed"]
    assert client.calls(call.sid).fetch().status == "queued"
    # a call that never rang is canceled, even when asked to complete
    assert client.calls(call.sid).update(status="completed").status == "canceled"
    with pytest.raises(TwilioRestException) as ended:
        client.calls(call.sid).update(twiml="<Response><Hangup/></Response>")
    assert (ended.value.status, ended.value.code) == (400, 21220)
    assert [c.sid for c in client.calls.list()] == [call.sid]


def test_call_answer_redirect_complete(twilio: TwilioSim) -> None:
    client = twilio.client()
    call = client.calls.create(
        to="+14155550001",
        from_=SECOND_NUMBER,
        twiml="<Response><Say>hi</Say></Response>",
        machine_detection="Enable",
    )
    status, answered = twilio.control(
        "POST", f"calls/{call.sid}", {"status": "in-progress", "answered_by": "human"}
    )
    assert status == 200 and answered["twiml"] == "<Response><Say>hi</Say></Response>"
    redirected = client.calls(call.sid).update(twiml="<Response><Pause/></Response>")
    assert (redirected.status, redirected.answered_by) == ("in-progress", "human")
    done = client.calls(call.sid).update(status="completed")
    assert (done.status, done.duration) == ("completed", "0")
    assert twilio.state()["calls"][0]["twiml"] == "<Response><Pause/></Response>"


def test_answering_a_url_call_fetches_signed_voice_webhook(twilio: TwilioSim) -> None:
    url = twilio.receiver.url + "/twilio/voice"
    call = twilio.client().calls.create(
        to=ALICE, from_=BOT_NUMBER, url=url, machine_detection="Enable"
    )
    status, answered = twilio.control("POST", f"calls/{call.sid}", {"answered_by": "machine_start"})
    assert (status, answered["webhook_status"]) == (200, 200)
    [hook] = twilio.receiver.requests
    assert hook.form["CallSid"] == call.sid and hook.form["AnsweredBy"] == "machine_start"
    assert hook.form["Direction"] == "outbound-api" and hook.form["CallStatus"] == "in-progress"
    validator = RequestValidator(twilio.auth_token)
    assert validator.validate(url, hook.form, hook.headers["X-Twilio-Signature"])


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": "4155550000", "from_": BOT_NUMBER, "url": VOICE_URL}, 21211),
        ({"to": ALICE, "from_": "bot", "url": VOICE_URL}, 21212),
        ({"to": ALICE, "from_": "+14155550199", "url": VOICE_URL}, 21210),
        ({"to": ALICE, "from_": BOT_NUMBER, "url": "not a url"}, 21205),
    ],
)
def test_call_refusals(twilio: TwilioSim, kwargs: dict[str, str], code: int) -> None:
    with pytest.raises(TwilioRestException) as refused:
        twilio.client().calls.create(**kwargs)
    assert (refused.value.status, refused.value.code) == (400, code)
    assert twilio.state()["calls"] == []


def test_call_without_instructions_is_21205(twilio: TwilioSim) -> None:
    # the SDK requires url/twiml/application_sid as arguments, so post the form directly
    resp = requests.post(
        f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Calls.json",
        data={"To": ALICE, "From": BOT_NUMBER},
        auth=(twilio.account_sid, twilio.auth_token),
        timeout=5,
    )
    assert (resp.status_code, resp.json()["code"]) == (400, 21205)


def test_faults_fail_then_recover(twilio: TwilioSim) -> None:
    client = twilio.client()
    conv = client.conversations.v1.conversations.create()
    thread = client.conversations.v1.conversations(conv.sid)
    status, _ = twilio.control(
        "POST",
        "faults",
        {"method": "POST", "path_contains": "/Messages", "status": 503, "count": 2},
    )
    assert status == 201
    for _ in range(2):
        with pytest.raises(TwilioRestException) as failed:
            thread.messages.create(body="retry me")
        assert (failed.value.status, failed.value.code) == (503, 20503)
    thread.participants.list()  # other paths are untouched
    assert thread.messages.create(body="retry me").index == 0
    assert len(twilio.conversation_state(conv.sid)["messages"]) == 1
    assert twilio.control("GET", "faults")[1] == {"faults": []}


def test_fault_after_takes_effect_but_loses_the_response(twilio: TwilioSim) -> None:
    client = twilio.client()
    conv = client.conversations.v1.conversations.create()
    twilio.control(
        "POST",
        "faults",
        {"path_contains": "/Calls.json", "status": 400, "code": 21215, "after": True},
    )
    with pytest.raises(TwilioRestException) as lost:
        client.calls.create(to=ALICE, from_=BOT_NUMBER, url=VOICE_URL)
    assert (lost.value.status, lost.value.code) == (400, 21215)
    assert len(twilio.state()["calls"]) == 1  # the call was placed all the same
    assert client.conversations.v1.conversations(conv.sid).fetch().sid == conv.sid


def test_stall_fault_trips_the_client_timeout(twilio: TwilioSim) -> None:
    # The stall outlasts the client's 0.5 s timeout: a Timeout (not a late answer) is the
    # proof that the simulator held the request.
    twilio.control("POST", "faults", {"method": "GET", "delay_seconds": 1.5})
    with pytest.raises(requests.exceptions.Timeout):
        twilio.client(timeout=0.5).conversations.v1.conversations.list()
    status, bad = twilio.control("POST", "faults", {"status": 500, "count": 0})
    assert status == 400 and "count" in bad["error"]


def _check_signed(twilio: TwilioSim, index: int = -1) -> dict[str, str]:
    hook = twilio.receiver.requests[index]
    assert hook.path == "/twilio/convo"
    assert hook.headers["Content-Type"] == "application/x-www-form-urlencoded"
    validator = RequestValidator(twilio.auth_token)
    assert validator.validate(twilio.webhook_url, hook.form, hook.headers["X-Twilio-Signature"])
    assert not validator.validate(twilio.webhook_url, {**hook.form, "Body": "forged"}, "x")
    return hook.form


def test_inbound_text_posts_signed_message_added(twilio: TwilioSim) -> None:
    status, sent = twilio.control("POST", "inbound", {"from": ALICE, "body": "Do you sell gates?"})
    assert status == 200 and sent["webhook_status"] == 200
    form = _check_signed(twilio)
    assert form["EventType"] == "onMessageAdded" and form["Source"] == "SMS"
    assert (form["ConversationSid"], form["MessageSid"]) == (
        sent["conversation_sid"],
        sent["message_sid"],
    )
    assert (form["Index"], form["Author"], form["Body"]) == ("0", ALICE, "Do you sell gates?")
    assert form["AccountSid"] == twilio.account_sid and form["ParticipantSid"].startswith("MB")
    conv = twilio.conversation_state(sent["conversation_sid"])
    [person] = conv["participants"]
    assert person["messaging_binding"] == {
        "type": "sms",
        "address": ALICE,
        "proxy_address": BOT_NUMBER,
    }
    _, again = twilio.control(
        "POST", "inbound", {"from": ALICE, "body": "photo", "media": ["image/jpeg"]}
    )
    assert again["conversation_sid"] == sent["conversation_sid"] and again["index"] == 1
    media = json.loads(_check_signed(twilio)["Media"])
    assert media[0]["ContentType"] == "image/jpeg" and media[0]["Sid"].startswith("ME")
    rest = twilio.client().conversations.v1.conversations(sent["conversation_sid"])
    assert rest.messages(again["message_sid"]).fetch().media[0]["content_type"] == "image/jpeg"


def test_group_inbound_and_rest_webhook_opt_in(twilio: TwilioSim) -> None:
    _, sent = twilio.control("POST", "inbound", {"from": ALICE, "body": "@ai hi", "group": [BOB]})
    conv = twilio.conversation_state(sent["conversation_sid"])
    bindings = [p["messaging_binding"] for p in conv["participants"]]
    assert bindings == [{"type": "sms", "address": n} for n in (ALICE, BOB)]
    _, reply = twilio.control("POST", "inbound", {"from": BOB, "body": "me too", "group": [ALICE]})
    assert reply["conversation_sid"] == sent["conversation_sid"]
    assert len(twilio.receiver.requests) == 2
    thread = twilio.client().conversations.v1.conversations(sent["conversation_sid"])
    # a Group MMS author must be a participant (50513), so the bot joins first, as the app does
    thread.participants.create(
        identity="gateframes-bot", messaging_binding_projected_address=BOT_NUMBER
    )
    thread.messages.create(author="gateframes-bot", body="quiet")  # REST: no webhook
    thread.messages.create(author="gateframes-bot", body="loud", x_twilio_webhook_enabled="true")
    twilio.receiver.wait(3)
    form = _check_signed(twilio, 2)
    assert (form["Body"], form["Source"], form["Index"]) == ("loud", "API", "3")
    # Every webhook the two creates decided on has been answered: "quiet" posted none.
    wait_for(lambda: twilio.control("GET", "webhooks/in_flight")[1] == {"in_flight": 0})
    assert len(twilio.receiver.requests) == 3


def test_inbound_errors_and_state_updated(twilio: TwilioSim) -> None:
    status, refused = twilio.control(
        "POST", "inbound", {"from": ALICE, "body": "x", "group": ["+442079460958"]}
    )
    assert (status, refused["code"]) == (400, 50435)
    assert twilio.state()["conversations"] == []
    assert twilio.control("POST", "inbound", {"from": "4155550100", "body": "x"})[0] == 400
    twilio.receiver.status = 503
    _, sent = twilio.control("POST", "inbound", {"from": ALICE, "body": "ping"})
    assert sent["webhook_status"] == 503
    status, update = twilio.control(
        "POST", "state_updated", {"conversation_sid": sent["conversation_sid"]}
    )
    assert (status, update["state_from"], update["state_to"]) == (200, "active", "inactive")
    form = _check_signed(twilio)
    assert form["EventType"] == "onConversationStateUpdated"
    assert (form["StateFrom"], form["StateTo"], form["Reason"]) == ("active", "inactive", "TIMER")
    assert twilio.conversation_state(sent["conversation_sid"])["state"] == "inactive"


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    args = [PYTHON, "-m", "sandbox.twilio_sim", "--port", str(port), "--auth-token", "t"]
    proc = Proc("sigterm", [*args, "--account-sid", "AC" + "1" * 32], base_env(), tmp_path)
    wait_port(port, proc=proc.popen)
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(10) == 0
    log = proc.log_text()
    assert f"twilio-sim listening on http://127.0.0.1:{port}" in log and "stopped" in log
    proc.stop()
