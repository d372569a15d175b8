"""Phone calls on GPT-Live (``VOICE_ENGINE=live``), end to end: web (/twilio/voice), the relay,
the GPT-Live simulator and the phone simulator playing what it receives on a real-time clock.

The simulator speaks four times faster than real time, so the assistant's audio piles up at the
relay, which paces it to the phone itself: these tests check what the caller hears, not what
was generated.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from urllib.parse import urlencode

import pytest
import redis

from common import call_keys, prompts
from sandbox import phone
from tests.conftest import REDIS_URL
from tests.support import PYTHON, base_env, wait_for
from tests.voice.stack import BOT_NUMBER, CALLER, Call, VoiceStack

pytestmark = pytest.mark.usefixtures("redis_url")

STAFF = "+14155550199"
STACK_OPTIONS = {
    "engine": "live",
    "env": {
        "STAFF_TRANSFER_NUMBER": STAFF,
        "STAFF_TRANSFER_TIMEOUT_SECONDS": "5",
        "STAFF_NOTIFY_TO": "+14155550188",
    },
}
BYTES_PER_MS = phone.BYTES_PER_MS


def heard_ms(call: Call) -> float:
    return len(call.phone.heard) / BYTES_PER_MS


def done_turns(stack: VoiceStack) -> list[dict]:
    return [t for t in stack.live_session()["turns"] if t["status"] == "done"]


def end_call(call: Call) -> None:
    if not call.phone.closed.is_set():
        call.phone.hang_up()
        call.phone.wait_closed(10)


def test_the_call_starts_a_live_session_and_the_caller_hears_the_greeting(stack: VoiceStack):
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        wait_for(lambda: heard_ms(call) > 100, timeout=20)
        # While the greeting plays, only a small lead waits at the phone: the relay paces.
        lead = []
        for _ in range(20):
            lead.append(call.phone.unplayed_bytes() / BYTES_PER_MS)
            time.sleep(0.05)
        assert 0 < max(lead) <= 300
        greeting = wait_for(lambda: done_turns(stack), timeout=20)[0]
        assert prompts.greeting("inbound") in greeting["text"]
        wait_for(lambda: heard_ms(call) >= greeting["audio_ms"] - 40, timeout=20)
        session = stack.live_session()
        config = session["session"]
        assert config["audio"]["format"] == {"type": "audio/pcmu", "rate": 8000}
        tools = config["delegation"]["responses"]["tools"]
        assert {t["name"] for t in tools} >= {"end_call", "send_text", "take_message"}
        assert session["errors"] == []  # every event the relay sent was accepted
    finally:
        end_call(call)


def test_end_call_says_goodbye_then_hangs_up(stack: VoiceStack):
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        wait_for(lambda: done_turns(stack), timeout=20)
        stack.live("call_tool?name=end_call&arguments={}")
        call.phone.say(phone.tone(600))
        assert call.phone.wait_closed(30), "the relay should end the call after the goodbye"
        outputs = stack.live("tool_outputs")["tool_outputs"]
        assert [o["name"] for o in outputs] == ["end_call"]
        assert outputs[0]["output"] == prompts.TOOL_END_CALL_OUTPUT
        assert call.phone.close_reason == "assistant_hung_up"
        assert call.phone.unplayed_bytes() == 0  # the goodbye was heard whole
        after = stack.after_stream(call)
        assert after.verbs == ["Hangup"] and not after.apologised
        # The after-call summary is queued with the call's record, as on Realtime.
        record = wait_for(lambda: queued_summary(call.sid), timeout=20)
        assert [t["name"] for t in record["tool_calls"]] == ["end_call"]
        assert record["outcome"] == "assistant_hung_up"
        assert any(who == "assistant" for who, _ in record["lines"])
    finally:
        end_call(call)


def queued_summary(call_sid: str) -> dict | None:
    """The summary task the relay put on the Celery queue for this call (no worker runs)."""
    r = redis.Redis.from_url(REDIS_URL)
    for raw in r.lrange("gateframes", 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        if args and args[0].get("call_sid") == call_sid:
            return args[0]
    return None


def sim_greeted(stack: VoiceStack, sim_call) -> None:
    """The greeting has played in full on a call the Twilio simulator runs."""
    greeting = wait_for(lambda: done_turns(stack), timeout=20)[0]
    wait_for(lambda: sim_call.log()["streams"][0]["heard_ms"] >= greeting["audio_ms"] - 40, 20)


def test_send_text_texts_the_caller_from_the_bot_number(stack: VoiceStack) -> None:
    before = len(stack.twilio_state()["sms"])
    stack.live("caller_says?" + urlencode({"text": "can you text me the link"}))
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        wait_for(lambda: done_turns(stack), timeout=20)
        call.phone.say(phone.tone(800))
        outputs = wait_for(lambda: stack.live("tool_outputs")["tool_outputs"], timeout=30)
        assert outputs[0]["name"] == "send_text" and outputs[0]["output"].startswith("Sent.")
        wait_for(lambda: any(t["text"].startswith("Okay: Sent") for t in done_turns(stack)), 30)
    finally:
        end_call(call)
    sms = stack.twilio_state()["sms"][before:]
    assert [(m["to"], m["from"]) for m in sms] == [(CALLER, BOT_NUMBER)]
    assert sms[0]["body"].startswith(prompts.IDENTITY)


def test_transfer_redirects_the_call_to_staff_after_the_connecting_line(stack: VoiceStack):
    stack.staff_phone(STAFF, answer=True, ring_seconds=0.5, talk_seconds=1.0)
    stack.live("caller_says?" + urlencode({"text": "transfer me to a person"}))
    sim_call = stack.call_in()
    sim_greeted(stack, sim_call)
    sim_call.speak(800)
    log = wait_for(lambda: (lg := sim_call.log())["done"] and lg, 60)
    kinds = [e["kind"] for e in log["events"]]
    assert kinds.index("stream_ended") < kinds.index("updated") < kinds.index("dial")
    [dialled] = [e for e in log["events"] if e["kind"] == "dial"]
    assert dialled["numbers"] == [STAFF] and dialled["status"] == "completed"
    assert "about: transfer me to a person" in dialled["whisper"][0]
    outputs = stack.live("tool_outputs")["tool_outputs"]
    assert [o["name"] for o in outputs] == ["transfer_to_staff"]
    assert outputs[0]["output"] == prompts.TOOL_TRANSFER_OUTPUT
    [stream] = log["streams"]
    assert stream["ended_by"] == "update" and stream["clears"] == 0


def test_bad_tool_arguments_get_every_problem_back(stack: VoiceStack):
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        wait_for(lambda: done_turns(stack), timeout=20)
        query = urlencode({"name": "send_text", "arguments": json.dumps({"text": "the link"})})
        stack.live("call_tool?" + query)
        call.phone.say(phone.tone(600))
        outputs = wait_for(lambda: stack.live("tool_outputs")["tool_outputs"], timeout=20)
        assert "unexpected field 'text'" in outputs[0]["output"]
        assert "missing field 'message'" in outputs[0]["output"]
        assert not call.phone.closed.is_set()
    finally:
        end_call(call)


def test_the_caller_talking_over_the_assistant_never_hears_stale_speech(stack: VoiceStack):
    # The phone plays in real time while the model speaks four times faster, so seconds of
    # the greeting wait at the relay when the caller talks over it: all of it must go.
    call = stack.place_call(speed=1)
    call.phone.start_line()
    try:
        wait_for(lambda: heard_ms(call) > 300, timeout=20)
        wait_for(lambda: done_turns(stack), timeout=20)  # generated whole, mostly unheard
        call.phone.say(phone.tone(600))
        wait_for(lambda: call.phone.clears, timeout=10)
        _at, dropped = call.phone.clears[0]
        assert dropped / BYTES_PER_MS <= 300  # the rest never left the relay: it was dropped
        time.sleep(0.3)  # the caller is still talking: nothing of the greeting may follow
        assert call.phone.received_after_clear == 0
        # After the caller stops, the assistant answers and the caller hears it.
        before = heard_ms(call)
        wait_for(lambda: heard_ms(call) > before + 200, timeout=15)
    finally:
        end_call(call)


def test_voicemail_plays_the_whole_message_then_hangs_up(stack: VoiceStack):
    call = stack.place_call(answered_by="machine_end_beep", outbound=True, speed=4)
    call.phone.start_line()
    assert call.phone.wait_closed(60), "the relay should end a voicemail call by itself"
    (message,) = done_turns(stack)
    assert message["text"] == prompts.greeting("voicemail")
    assert call.phone.close_reason == "voicemail_left"
    assert call.phone.unplayed_bytes() == 0 and not call.phone.clears
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    assert r.get(f"gf:call_end:{call.sid}") == "voicemail_left"
    after = stack.after_stream(call)
    assert after.verbs == ["Hangup"] and not after.apologised


def test_a_session_closed_for_content_ends_with_the_apology(stack: VoiceStack):
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        wait_for(lambda: done_turns(stack), timeout=20)
        stack.live("end?reason=content")
        assert call.phone.wait_closed(20)
        assert call.phone.close_reason == "upstream_lost"
        after = stack.after_stream(call)
        assert after.apologised and after.verbs[-1] == "Hangup"
        log = stack.log_text("relay")
        assert "OpenAI Live session closed: content" in log and call.sid in log
    finally:
        end_call(call)


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        ('{"type":"session.new_thing","x":1}', "unknown GPT-Live event ignored: session.new_thing"),
        ('{"type":"session.output_audio.delta","delta":"a\\"b"}', "not base64"),
    ],
)
def test_an_unknown_or_malformed_server_event_is_logged_and_the_call_goes_on(
    stack: VoiceStack, raw: str, logged: str
):
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        wait_for(lambda: done_turns(stack), timeout=20)
        stack.live("inject?" + urlencode({"raw": raw}))
        line = wait_for(
            lambda: next((ln for ln in stack.log_text("relay").splitlines() if logged in ln), None),
            timeout=10,
        )
        assert call.sid in line
        before = heard_ms(call)
        call.phone.say(phone.tone(600))  # the assistant still answers
        wait_for(lambda: heard_ms(call) > before + 200, timeout=15)
        assert not call.phone.closed.is_set()
    finally:
        end_call(call)


def test_a_dropped_session_reconnects_with_the_conversation_and_no_second_greeting(
    stack: VoiceStack,
):
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        wait_for(lambda: done_turns(stack), timeout=20)
        stack.live("faults?drop_now=1")
        sessions = wait_for(lambda: (s := stack.live("sessions")["sessions"]) and len(s) >= 2 and s)
        new = wait_for(lambda: stack.live("sessions")["sessions"][-1]["session"], timeout=10)
        history = [m["content"][0]["text"] for m in new["input"][1:]]
        assert any(prompts.GREETING_OPENING in text for text in history)
        time.sleep(1.0)
        newest = stack.live("sessions")["sessions"][-1]
        assert not any("Greet" in a.get("content", "") for a in newest["appended"])
        assert not call.phone.closed.is_set() and len(sessions) >= 2
    finally:
        end_call(call)


def test_the_time_cap_says_goodbye_then_hangs_up(voice_stack) -> None:
    short = voice_stack(engine="live", env={"SESSION_TIME_LIMIT_SECONDS": "4"})
    call = short.place_call(speed=4)
    call.phone.start_line()
    try:
        assert call.phone.wait_closed(40), "the time cap should end the call"
        assert call.phone.close_reason == "time_limit"
        said = [t["text"] for t in short.live_session()["turns"]]
        assert any(prompts.TIME_LIMIT_SENTENCE in text for text in said)
        assert call.phone.unplayed_bytes() == 0  # the goodbye was heard whole
        after = short.after_stream(call)
        assert after.verbs == ["Hangup"] and not after.apologised
    finally:
        end_call(call)


def test_sigterm_hands_a_live_call_to_the_other_relay(voice_stack) -> None:
    pair = voice_stack(engine="live", relays=2)
    sim_call = pair.call_in()
    sim_greeted(pair, sim_call)
    assert pair.router is not None
    pair.router.target = pair.relay_ports[1]  # the router stops sending to the stopping relay
    pair.terminate("relay")
    wait_for(lambda: len(s := sim_call.log()["streams"]) == 2 and s[1]["open"], 30)
    assert pair.wait_exit("relay", 30) == 0  # drained: the call moved, then it exited
    log = sim_call.log()
    first, second = log["streams"]
    assert first["ended_by"] == "update" and second["custom_parameters"].get("resume")
    assert log["said"] == []  # no apology
    sessions = wait_for(lambda: (s := pair.live("sessions")["sessions"]) and len(s) == 2 and s)
    new = wait_for(lambda: pair.live("sessions")["sessions"][1]["session"], 20)
    history = [m["content"][0]["text"] for m in new["input"][1:]]
    assert any(prompts.GREETING_OPENING in text for text in history)  # told what was said
    time.sleep(1.0)
    appended = pair.live("sessions")["sessions"][1]["appended"]
    assert not any("Greet" in a.get("content", "") for a in appended)  # and not greeting again
    assert sessions[1]["errors"] == []
    sim_call.hang_up()


def test_sandbox_call_with_engine_live_talks_to_the_live_simulator(stack: VoiceStack) -> None:
    """``python -m sandbox call --engine live``: the operator's call without a phone, with the
    caller's words scripted on the GPT-Live simulator."""
    cmd = [PYTHON, "-m", "sandbox", "call", "--web", stack.web_url, "--engine", "live"]
    cmd += ["--auth-token", stack.auth_token, "--redis-url", REDIS_URL, "--max-seconds", "45"]
    cmd += ["--live-sim", stack.live_http, "--via", "phone", "--say", "goodbye"]
    done = subprocess.run(cmd, env=base_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    said = [ln.strip() for ln in done.stdout.splitlines() if ln.startswith("  ")]
    assert said[0].startswith("assistant: Hello, this is the GateFrames.com A.I. assistant.")
    assert "caller: goodbye" in said
    assert "tool: end_call() -> ok" in said
    assert "stream closed (1000 'assistant_hung_up')" in done.stdout


def test_take_message_keeps_the_message_for_staff(stack: VoiceStack) -> None:
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        wait_for(lambda: done_turns(stack), timeout=20)
        message = {"name": "Ann Lee", "callback_number": "415 555 0123", "message": "call me"}
        stack.live(
            "call_tool?" + urlencode({"name": "take_message", "arguments": json.dumps(message)})
        )
        call.phone.say(phone.tone(600))
        outputs = wait_for(lambda: stack.live("tool_outputs")["tool_outputs"], timeout=30)
        assert outputs[0]["name"] == "take_message"
        assert outputs[0]["output"] == prompts.TOOL_MESSAGE_TAKEN_OUTPUT
        notes = call_keys.read_notes(redis.Redis.from_url(REDIS_URL), call.sid)
        assert [(n["kind"], n["name"], n["callback_number"]) for n in notes] == [
            ("message", "Ann Lee", "+14155550123")
        ]
    finally:
        end_call(call)
