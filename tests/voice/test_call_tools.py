"""The assistant's tools on live calls (#14), end to end: web, relay, the Realtime simulator
(whose model calls the tools the session offers, scripted through ``/_sandbox/caller_says``
and ``/_sandbox/call_tool``) and the Twilio simulator (calls it runs: redirects, ``<Dial>``,
staff phones, Messages). The after-call summary runs on a real Celery worker.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

import pytest

from common import prompts
from sandbox import dial, phone
from tests.support import wait_for
from tests.voice.stack import BOT_NUMBER, CALLER, Call, VoiceStack
from webhooks.transfer import NO_ANSWER

pytestmark = pytest.mark.usefixtures("redis_url")

STAFF = "+14155550177"
BYTES_PER_MS = phone.BYTES_PER_MS


STACK_OPTIONS = {"env": {"STAFF_TRANSFER_NUMBER": STAFF, "STAFF_TRANSFER_TIMEOUT_SECONDS": "5"}}


def newest(stack: VoiceStack) -> dict:
    return wait_for(lambda: (stack.sessions() or [None])[-1])


def greeted(stack: VoiceStack, call: Call) -> None:
    wait_for(lambda: [r for r in newest(stack)["responses"] if r["status"] == "completed"])
    wait_for(lambda: call.phone.heard and call.phone.unplayed_bytes() == 0)


def sim_greeted(stack: VoiceStack, sim_call: dial.SimCall) -> None:
    """The greeting has played in full on a call the Twilio simulator runs (speaking earlier
    would be a barge-in)."""
    greeting = wait_for(
        lambda: [r for r in newest(stack)["responses"] if r["status"] == "completed"], 20
    )[0]
    wait_for(lambda: sim_call.log()["streams"][0]["heard_ms"] >= greeting["audio_ms_sent"] - 1)


def hang_up(call: Call) -> None:
    if not call.phone.closed.is_set():
        call.phone.hang_up()
        call.phone.wait_closed(10)


def relay_records(stack: VoiceStack, msg: str, call_sid: str) -> list[dict]:
    return [
        r
        for r in stack.log_records("relay")
        if r.get("msg", "").startswith(msg) and r.get("call_sid") == call_sid
    ]


def test_end_call_plays_the_whole_goodbye_then_hangs_up(stack: VoiceStack) -> None:
    stack.caller_says("that's all, goodbye")
    call = stack.place_call(speed=4)
    call.phone.start_line()
    greeted(stack, call)
    call.phone.say(phone.tone(800))
    assert call.phone.wait_closed(40), "the relay should end the call after the goodbye"
    assert call.phone.close_reason == "assistant_hung_up"
    session = newest(stack)
    [tool_call] = session["tool_calls"]
    assert tool_call["name"] == "end_call"
    [output] = session["tool_outputs"]
    assert output["output"] == prompts.TOOL_END_CALL_OUTPUT
    goodbye = session["responses"][-1]
    assert goodbye["status"] == "completed" and goodbye["audio_ms_sent"] > 0
    # Every byte the model said reached the phone and played before the stream closed.
    sent_ms = sum(r["audio_ms_sent"] for r in session["responses"])
    assert len(call.phone.heard) == sent_ms * BYTES_PER_MS
    assert call.phone.unplayed_bytes() == 0 and not call.phone.clears
    after = stack.after_stream(call)
    assert after.verbs == ["Hangup"] and not after.apologised
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.relay_port}/metrics") as resp:
        text = resp.read().decode()
    assert 'relay_tool_calls_total{outcome="ok",tool="end_call"}' in text


def test_transfer_redirects_the_call_and_staff_hear_the_reason(stack: VoiceStack) -> None:
    stack.staff_phone(STAFF, answer=True, ring_seconds=0.5, talk_seconds=1.0)
    stack.caller_says("transfer me to a person")
    sim_call = stack.call_in()
    sim_greeted(stack, sim_call)
    sim_call.speak(800)
    log = wait_for(lambda: (lg := sim_call.log())["done"] and lg, 60)
    kinds = [e["kind"] for e in log["events"]]
    # The relay's UpdateCall moved the call off the stream to /twilio/voice/transfer.
    assert kinds.index("stream_ended") < kinds.index("updated") < kinds.index("dial")
    [stream] = log["streams"]
    assert stream["ended_by"] == "update"
    transfer_fetch = next(e for e in log["events"] if e["kind"] == "fetch" and e["why"] == "update")
    assert transfer_fetch["url"].endswith("/twilio/voice/transfer")
    [dial] = [e for e in log["events"] if e["kind"] == "dial"]
    assert dial["numbers"] == [STAFF] and dial["caller_id"] == BOT_NUMBER
    assert dial["status"] == "completed"
    [whisper] = dial["whisper"]
    assert "about: transfer me to a person" in whisper
    assert not any("transfer me" in said for said in log["said"])  # the reason is staff's only
    assert not [e for e in log["events"] if e["kind"] == "connect_action"]
    session = newest(stack)
    assert [c["name"] for c in session["tool_calls"]] == ["transfer_to_staff"]
    assert session["tool_outputs"][0]["output"] == prompts.TOOL_TRANSFER_OUTPUT
    # The connecting line was spoken (and played) before the redirect.
    assert session["responses"][-1]["status"] == "completed"
    assert stream["clears"] == 0
    assert stream["heard_ms"] >= sum(r["audio_ms_sent"] for r in session["responses"]) - 1


def test_a_transfer_nobody_answers_offers_the_caller_a_message(stack: VoiceStack) -> None:
    stack.staff_phone(STAFF, answer=False)
    stack.twilio_settings(speed=5)  # the 5 s of ringing pass in one
    try:
        stack.caller_says("can I talk to a human")
        sim_call = stack.call_in()
        sim_greeted(stack, sim_call)
        sim_call.speak(800)
        log = wait_for(lambda: (lg := sim_call.log())["done"] and lg, 60)
    finally:
        stack.twilio_settings(speed=1)
    [dial] = [e for e in log["events"] if e["kind"] == "dial"]
    assert dial["status"] == "no-answer"
    # Not silence: Twilio asks /twilio/voice/transfer/after, which offers <Record>.
    assert NO_ANSWER in log["said"]
    assert [e for e in log["events"] if e["kind"] == "record"]


def test_send_text_texts_the_caller_once_from_the_bot_number(stack: VoiceStack) -> None:
    before = len(stack.twilio_state()["sms"])
    stack.caller_says("can you text me the link")
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        greeted(stack, call)
        call.phone.say(phone.tone(800))
        wait_for(lambda: relay_records(stack, "call text sent", call.sid), 30)
        # The assistant says the text is on its way (the reply to the tool's output).
        wait_for(
            lambda: [
                r
                for r in newest(stack)["responses"]
                if r["text"].startswith("Okay: Sent") and r["status"] == "completed"
            ],
            30,
        )
    finally:
        hang_up(call)
    wait_for(lambda: relay_records(stack, "call ended", call.sid))
    sms = stack.twilio_state()["sms"][before:]
    assert [(m["to"], m["from"]) for m in sms] == [(CALLER, BOT_NUMBER)]
    assert sms[0]["body"].startswith(prompts.IDENTITY)
    [output] = newest(stack)["tool_outputs"]
    assert output["name"] == "send_text" and output["output"].startswith("Sent.")


def test_bad_arguments_are_explained_to_the_model_and_the_call_goes_on(stack: VoiceStack) -> None:
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        greeted(stack, call)
        # Scripted after the greeting: "the next response calls the tool", and the greeting
        # is a response too (scripted before the call, the greeting itself made the call).
        stack.model_calls_tool("send_text", {"message": 5})
        call.phone.say(phone.tone(800))
        [output] = wait_for(lambda: newest(stack).get("tool_outputs"), 30)
        assert output["name"] == "send_text"
        assert "field 'message' must be a string" in output["output"]
        # The assistant speaks again, and the caller hears it.
        reply = wait_for(
            lambda: [
                r
                for r in newest(stack)["responses"]
                if r["text"].startswith("Okay: Not done") and r["status"] == "completed"
            ],
            30,
        )[0]
        wait_for(lambda: len(call.phone.heard) >= reply["audio_ms_sent"] * BYTES_PER_MS)
        assert not call.phone.closed.is_set()
    finally:
        hang_up(call)
    assert newest(stack)["errors"] == []


# ==== the summary after the call ==============================================================
NOTIFY = ("+14155550142", "+14155550143")


@pytest.fixture(scope="module")
def summary_stack(voice_stack: Callable[..., VoiceStack]) -> VoiceStack:
    env = {
        "STAFF_NOTIFY_TO": ",".join(NOTIFY),
        # short task timings: a killed worker's summary is redelivered within seconds
        "TASK_TIME_LIMIT_SECONDS": "3",
        "CELERY_VISIBILITY_TIMEOUT": "4",
        "TASK_LOCK_SECONDS": "4",
    }
    s = voice_stack(env=env, chat=True)
    from twilio.rest import Client

    from sandbox.twilio_sim.sdk import RebasedHttpClient

    client = Client(s.account_sid, s.auth_token, http_client=RebasedHttpClient(s.twilio_url))
    conv = client.conversations.v1.conversations.create(friendly_name="GateFrames staff")
    s.conversation = conv.sid  # type: ignore[attr-defined]
    s.start_worker("worker", {"STAFF_CONVERSATION_SID": conv.sid})
    return s


def posts_for(stack: VoiceStack, call_sid: str) -> list[dict]:
    convs = stack.twilio_state()["conversations"]
    sid = stack.conversation  # type: ignore[attr-defined]
    conv = convs[sid] if isinstance(convs, dict) else next(c for c in convs if c["sid"] == sid)
    return [
        m
        for m in conv["messages"]
        if json.loads(m.get("attributes") or "{}").get("call_summary") == call_sid
    ]


def summary_handled(stack: VoiceStack, call_sid: str) -> list[dict]:
    return [
        r
        for r in stack.log_records("worker")
        if r.get("msg") == "call summary handled" and r.get("call_sid") == call_sid
    ]


def goodbye_call(stack: VoiceStack) -> Call:
    stack.caller_says("thanks, goodbye")
    call = stack.place_call(speed=4)
    call.phone.start_line()
    wait_for(lambda: call.phone.heard and call.phone.unplayed_bytes() == 0, 30)
    call.phone.say(phone.tone(800))
    assert call.phone.wait_closed(40)
    assert call.phone.close_reason == "assistant_hung_up"
    return call


def test_after_a_call_staff_get_one_summary_each(summary_stack: VoiceStack) -> None:
    stack = summary_stack
    stack.realtime_reset()
    before = len(stack.twilio_state()["sms"])
    call = goodbye_call(stack)
    wait_for(lambda: summary_handled(stack, call.sid), 60)
    sms = stack.twilio_state()["sms"][before:]
    assert sorted(m["to"] for m in sms) == sorted(NOTIFY)
    assert {m["from"] for m in sms} == {BOT_NUMBER}
    [post] = posts_for(stack, call.sid)
    assert {m["body"] for m in sms} == {post["body"]}
    assert post["body"].startswith(f"Call summary: {CALLER} (inbound")
    # The model read the whole record: transcript and the tool call.
    request = stack.chat_requests()[-1]
    user = request["body"]["messages"][1]["content"]
    assert "end_call" in user and "Ended: assistant_hung_up" in user
    [queued] = relay_records(stack, "call summary queued", call.sid)
    assert queued["outcome"] == "queued"
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.relay_port}/metrics") as resp:
        assert 'relay_call_summaries_total{outcome="queued"} 1.0' in resp.read().decode()


def test_a_worker_killed_mid_summary_still_sends_it_once(summary_stack: VoiceStack) -> None:
    stack = summary_stack
    stack.realtime_reset()
    stack.chat_fault(status=200, count=1, delay_seconds=6)  # the first summary stalls
    asked, before = len(stack.chat_requests()), len(stack.twilio_state()["sms"])
    call = goodbye_call(stack)
    wait_for(lambda: len(stack.chat_requests()) > asked, 30)  # the summary is mid-flight
    stack.kill("worker")
    conversation: str = stack.conversation  # type: ignore[attr-defined]
    stack.start_worker("worker2", {"STAFF_CONVERSATION_SID": conversation})
    wait_for(lambda: summary_handled(stack, call.sid), 60)
    # The killed worker's stalled request is answered into the void; nothing else follows.
    wait_for(lambda: all("status" in r for r in stack.chat_requests()), 15)
    sms = stack.twilio_state()["sms"][before:]
    assert sorted(m["to"] for m in sms) == sorted(NOTIFY)
    assert len(posts_for(stack, call.sid)) == 1
    assert [r["outcome"] for r in summary_handled(stack, call.sid)] == ["sent"]
