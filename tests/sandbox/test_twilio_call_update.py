"""Calls the Twilio simulator runs: UpdateCall as the twilio SDK sends it, and the TwiML the
simulated phone network follows (streams, Say, Record, Dial to a staff phone), over real
HTTP and WebSockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from sandbox import dial
from tests.sandbox.call_doubles import FakeRelay, TwimlApp
from tests.sandbox.conftest import BOT_NUMBER, TwilioSim
from tests.support import wait_for

STAFF = "+14155550142"


@pytest.fixture(scope="module")
def relay() -> Iterator[FakeRelay]:
    r = FakeRelay().start()
    yield r
    r.stop()


@pytest.fixture
def app(twilio: TwilioSim, relay: FakeRelay) -> Iterator[TwimlApp]:
    relay.streams.clear()
    a = TwimlApp(twilio.auth_token).start()
    yield a
    a.stop()


def stream_doc(url: str, action: str | None = None, **params: str) -> str:
    nouns = "".join(f'<Parameter name="{k}" value="{v}"/>' for k, v in params.items())
    act = f' action="{action}"' if action else ""
    return f'<Response><Connect{act}><Stream url="{url}">{nouns}</Stream></Connect></Response>'


def until_event(call: dial.SimCall, kind: str, count: int = 1) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]] | None:
        events = [e for e in call.log()["events"] if e["kind"] == kind]
        return events if len(events) >= count else None

    return wait_for(found)


def place(twilio: TwilioSim, app: TwimlApp, doc: str, **payload: Any) -> dial.SimCall:
    app.docs["/voice"] = doc
    body = {"from": "+14155550100", "url": app.url + "/voice", **payload}
    status, placed = twilio.control("POST", "calls", body)
    assert status == 200, placed
    return dial.SimCall(twilio.url, placed["call_sid"])


def test_update_with_twiml_ends_the_stream_and_starts_the_new_one(
    twilio: TwilioSim, app: TwimlApp, relay: FakeRelay
) -> None:
    app.docs["/after"] = "<Response><Hangup/></Response>"
    call = place(twilio, app, stream_doc(relay.url + "/first", "/after", amd="", callSid="x"))
    [first] = relay.wait_streams(1)
    start = first.start()
    assert first.kinds()[0] == "connected"
    assert start["start"]["callSid"] == call.sid
    assert start["start"]["accountSid"] == twilio.account_sid
    assert start["start"]["customParameters"] == {"amd": "", "callSid": "x"}
    validator = RequestValidator(twilio.auth_token)
    assert validator.validate(relay.url + "/first", {}, first.headers["X-Twilio-Signature"])
    [voice] = app.fetched("/voice")
    assert voice.signed and voice.form["CallSid"] == call.sid
    assert (voice.form["Direction"], voice.form["To"]) == ("inbound", BOT_NUMBER)

    second_doc = stream_doc(relay.url + "/second", app.url + "/after2", reason="transfer")
    app.docs["/after2"] = "<Response><Say>Goodbye.</Say><Hangup/></Response>"
    updated = twilio.client().calls(call.sid).update(twiml=second_doc)
    assert updated.status == "in-progress"
    assert first.closed.wait(10)
    stop = first.messages[-1]
    assert stop["event"] == "stop" and stop["stop"]["callSid"] == call.sid
    assert stop["streamSid"] == start["streamSid"]
    [_, second] = relay.wait_streams(2)
    again = second.start()["start"]
    assert again["callSid"] == call.sid and again["streamSid"] != start["streamSid"]
    assert again["customParameters"] == {"reason": "transfer"}
    # the redirected document is abandoned: its <Connect action> is never requested (the
    # new stream opening proves the old <Connect> was finished with)
    assert app.fetched("/after") == []
    log = call.log()
    assert [s["ended_by"] for s in log["streams"]] == ["update", None]
    assert log["streams"][0]["stop_sent"] is True

    # the relay closing the stream ends <Connect>: now its action is requested and run
    second.conn.close()
    wait_for(lambda: call.log()["done"])
    [after] = app.fetched("/after2")
    assert after.signed and after.form["CallSid"] == call.sid
    log = call.log()
    assert log["said"] == ["Goodbye."] and log["status"] == "completed"
    assert log["streams"][1]["ended_by"] == "server"


def test_update_with_url_fetches_the_twiml_signed(
    twilio: TwilioSim, app: TwimlApp, relay: FakeRelay
) -> None:
    call = place(twilio, app, stream_doc(relay.url + "/first"))
    [first] = relay.wait_streams(1)
    first.start()
    app.docs["/next"] = stream_doc(relay.url + "/next", why="url")
    twilio.client().calls(call.sid).update(url=app.url + "/next", method="POST")
    [_, second] = relay.wait_streams(2)
    assert second.start()["start"]["customParameters"] == {"why": "url"}
    assert first.closed.is_set() and first.kinds()[-1] == "stop"
    [fetched] = app.fetched("/next")
    assert fetched.signed and fetched.form["CallSid"] == call.sid
    assert fetched.form["CallStatus"] == "in-progress"


def test_status_completed_hangs_up(twilio: TwilioSim, app: TwimlApp, relay: FakeRelay) -> None:
    app.docs["/after"] = "<Response><Say>never</Say></Response>"
    call = place(twilio, app, stream_doc(relay.url + "/s", "/after"))
    [stream] = relay.wait_streams(1)
    stream.start()
    done = twilio.client().calls(call.sid).update(status="completed")
    assert done.status == "completed"
    assert stream.closed.wait(10) and stream.kinds()[-1] == "stop"
    wait_for(lambda: call.log()["done"])
    kinds = [e["kind"] for e in call.log()["events"]]
    assert kinds[-2:] == ["hangup", "ended"]
    assert app.fetched("/after") == []
    assert twilio.client().calls(call.sid).fetch().status == "completed"


def test_update_refusals(twilio: TwilioSim, app: TwimlApp, relay: FakeRelay) -> None:
    client = twilio.client()
    call = place(twilio, app, stream_doc(relay.url + "/s"))
    [stream] = relay.wait_streams(1)
    stream.start()
    cases: list[tuple[dict[str, Any], int]] = [
        ({"twiml": "<Response/>", "url": app.url + "/x"}, 21200),
        ({"twiml": "<Response><Say>" + "x" * 4000 + "</Say></Response>"}, 21200),
        ({"status": "busy"}, 21200),
        ({"url": "not a url"}, 21205),
    ]
    for kwargs, code in cases:
        with pytest.raises(TwilioRestException) as refused:
            client.calls(call.sid).update(**kwargs)
        assert (refused.value.status, refused.value.code) == (400, code), kwargs
    # canceled leaves a call in progress alone
    assert client.calls(call.sid).update(status="canceled").status == "in-progress"
    assert not stream.closed.is_set() and len(relay.streams) == 1
    client.calls(call.sid).update(status="completed")
    with pytest.raises(TwilioRestException) as ended:
        client.calls(call.sid).update(twiml="<Response><Hangup/></Response>")
    assert (ended.value.status, ended.value.code) == (400, 21220)
    assert ended.value.msg.endswith("Call is not in-progress. Cannot redirect.")
    queued = client.calls.create(to="+14155550100", from_=BOT_NUMBER, url=app.url + "/voice")
    with pytest.raises(TwilioRestException) as not_yet:
        client.calls(queued.sid).update(url=app.url + "/voice")
    assert not_yet.value.code == 21220


def transfer_doc(app: TwimlApp, timeout: int, action: bool = True, after: str = "") -> str:
    act = f' action="{app.url}/dialed"' if action else ""
    return (
        f'<Response><Say>Connecting you.</Say><Dial callerId="{BOT_NUMBER}" timeout="{timeout}"'
        f'{act}><Number url="{app.url}/whisper">{STAFF}</Number></Dial>{after}</Response>'
    )


def test_dial_answered_plays_the_whisper_to_staff(
    twilio: TwilioSim, app: TwimlApp, relay: FakeRelay
) -> None:
    twilio.control("POST", "settings", {"speed": 10})
    behaviour = {"ring_seconds": 1, "talk_seconds": 1}
    assert twilio.control("POST", f"phones/{STAFF}", behaviour)[0] == 200
    reason = "Transfer: caller asks about a slide gate."
    app.docs["/whisper"] = f"<Response><Say>{reason}</Say></Response>"
    app.docs["/dialed"] = "<Response><Hangup/></Response>"
    call = place(twilio, app, stream_doc(relay.url + "/s"))
    relay.wait_streams(1)[0].start()
    twilio.client().calls(call.sid).update(twiml=transfer_doc(app, 20))
    [dialed] = wait_for(lambda: app.fetched("/dialed"))
    assert dialed.signed and dialed.form["DialCallStatus"] == "completed"
    [whisper] = app.fetched("/whisper")
    child = dialed.form["DialCallSid"]
    assert whisper.signed and whisper.form["CallSid"] == child
    assert (whisper.form["ParentCallSid"], whisper.form["Direction"]) == (call.sid, "outbound-dial")
    assert (whisper.form["To"], whisper.form["From"]) == (STAFF, BOT_NUMBER)
    wait_for(lambda: call.log()["done"])
    log = call.log()
    assert log["said"] == ["Connecting you."]
    staff_heard = [e["text"] for e in log["events"] if e["kind"] == "say" and e["leg"] == "staff"]
    assert staff_heard == [reason]
    [event] = [e for e in log["events"] if e["kind"] == "dial"]
    assert (event["answered"], event["status"]) == (STAFF, "completed")
    [leg] = [c for c in twilio.state()["calls"] if c["sid"] == child]
    assert (leg["parent_call_sid"], leg["status"], leg["to"]) == (call.sid, "completed", STAFF)


def test_dial_not_answered_requests_the_action_with_no_answer(
    twilio: TwilioSim, app: TwimlApp, relay: FakeRelay
) -> None:
    twilio.control("POST", "settings", {"speed": 10})
    twilio.control("POST", f"phones/{STAFF}", {"answer": False})
    app.docs["/dialed"] = "<Response><Say>Nobody is free, please leave a message.</Say></Response>"
    call = place(twilio, app, transfer_doc(app, 5))
    [dialed] = wait_for(lambda: app.fetched("/dialed"))
    assert dialed.form["DialCallStatus"] == "no-answer" and "DialCallSid" not in dialed.form
    assert app.fetched("/whisper") == []
    wait_for(lambda: call.log()["done"])
    assert call.log()["said"] == ["Connecting you.", "Nobody is free, please leave a message."]
    [leg] = [c for c in twilio.state()["calls"] if c["parent_call_sid"] == call.sid]
    assert leg["status"] == "no-answer"


def test_dial_not_answered_without_action_goes_on(twilio: TwilioSim, app: TwimlApp) -> None:
    twilio.control("POST", "settings", {"speed": 10})
    twilio.control("POST", f"phones/{STAFF}", {"answer": False})
    doc = transfer_doc(app, 5, action=False, after="<Say>Sorry, nobody answered.</Say>")
    call = place(twilio, app, doc)
    wait_for(lambda: call.log()["done"])
    log = call.log()
    assert log["said"] == ["Connecting you.", "Sorry, nobody answered."]
    assert [e["status"] for e in log["events"] if e["kind"] == "dial"] == ["no-answer"]
    assert app.fetched("/dialed") == []  # the log's end proves the Dial had finished


def test_record_posts_the_recording_to_its_action(twilio: TwilioSim, app: TwimlApp) -> None:
    twilio.control("POST", "settings", {"speed": 10})
    app.docs["/recorded"] = "<Response><Say>Thanks, bye.</Say><Hangup/></Response>"
    doc = '<Response><Say>Leave a message.</Say><Record action="/recorded" timeout="2"/></Response>'
    call = place(twilio, app, doc, record_speech_ms=3000)
    [recorded] = wait_for(lambda: app.fetched("/recorded"))  # relative to the document's URL
    assert recorded.signed and recorded.form["RecordingDuration"] == "3"
    assert recorded.form["RecordingSid"].startswith("RE")
    assert recorded.form["RecordingUrl"].endswith(recorded.form["RecordingSid"])
    wait_for(lambda: call.log()["done"])
    assert call.log()["said"] == ["Leave a message.", "Thanks, bye."]


def test_silent_record_skips_the_action(twilio: TwilioSim, app: TwimlApp) -> None:
    twilio.control("POST", "settings", {"speed": 10})
    doc = '<Response><Record action="/recorded" timeout="2"/><Say>No message.</Say></Response>'
    call = place(twilio, app, doc)
    wait_for(lambda: call.log()["done"])
    assert call.log()["said"] == ["No message."]
    assert app.fetched("/recorded") == []


def test_bad_twiml_and_control_refusals(twilio: TwilioSim, app: TwimlApp) -> None:
    call = place(twilio, app, "<Response><Sing>la</Sing></Response>")
    wait_for(lambda: call.log()["done"])
    errors = [e["code"] for e in call.log()["events"] if e["kind"] == "error"]
    assert errors == [12200]
    assert twilio.control("POST", "calls", {"from": "555", "url": app.url})[0] == 400
    assert twilio.control("POST", f"phones/{STAFF}", {"answers": True})[0] == 400
    assert twilio.control("POST", "settings", {"speed": 0})[0] == 400
    assert twilio.control("POST", f"calls/{call.sid}/speak", {"ms": 100})[0] == 400
