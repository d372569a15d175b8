"""Phone calls end to end: web (/twilio/voice), relay (Twilio mode), the Realtime simulator,
and the phone simulator playing what it receives on a real-time clock.

The Realtime simulator streams audio four times faster than real time (as OpenAI does), so
audio piles up at the phone the way it piles up in Twilio's buffer: barge-in and voicemail are
exercised against real buffering, not against audio that happens to arrive just in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from twilio.request_validator import RequestValidator

from common import prompts
from sandbox import dial, phone
from tests.conftest import REDIS_URL
from tests.support import wait_for
from tests.voice.stack import Call, VoiceStack

pytestmark = pytest.mark.usefixtures("redis_url")

BYTES_PER_MS = phone.BYTES_PER_MS


def heard_ms(call: Call) -> float:
    return len(call.phone.heard) / BYTES_PER_MS


def newest_session(stack: VoiceStack) -> dict:
    return wait_for(lambda: (stack.sessions() or [None])[-1])


def responses(stack: VoiceStack, status: str | None = None) -> list[dict]:
    session = newest_session(stack)
    return [r for r in session["responses"] if status is None or r["status"] == status]


def end_call(call: Call) -> None:
    if not call.phone.closed.is_set():
        call.phone.hang_up()
        call.phone.wait_closed(10)


# ==== greetings ================================================================================
@pytest.mark.parametrize(("outbound", "kind"), [(False, "inbound"), (True, "outbound")])
def test_the_assistant_greets_by_direction(stack: VoiceStack, outbound: bool, kind: str):
    call = stack.place_call(outbound=outbound, speed=4)
    call.phone.start_line()
    try:
        greeting = wait_for(lambda: responses(stack, "completed"))[0]
        assert greeting["text"] == prompts.greeting(kind)
        # The caller hears all of it, in μ-law as the session asked for.
        wait_for(lambda: heard_ms(call) >= greeting["audio_ms_sent"] - 1)
        session = newest_session(stack)["session"]
        assert session["audio"]["input"]["format"]["type"] == "audio/pcmu"
        assert session["audio"]["output"]["format"]["type"] == "audio/pcmu"
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    finally:
        end_call(call)


def test_a_greeting_openai_failed_is_asked_for_again(stack: VoiceStack):
    stack.realtime_fault(fail_responses=1)  # the greeting's response ends "failed"
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        greeting = wait_for(lambda: responses(stack, "completed"))[0]
        assert [r["status"] for r in responses(stack)][:2] == ["failed", "completed"]
        assert greeting["text"] == prompts.greeting("inbound")
        wait_for(lambda: heard_ms(call) >= greeting["audio_ms_sent"] - 1)
        assert not call.phone.closed.is_set()
    finally:
        end_call(call)


# ==== barge-in =================================================================================
def test_barge_in_truncates_at_the_audio_the_caller_heard(stack: VoiceStack):
    call = stack.place_call(speed=1)  # barge-in accuracy needs a real-time player
    call.phone.start_line()
    try:
        wait_for(lambda: heard_ms(call) >= 1200)  # well into the greeting (several seconds)
        assert call.phone.unplayed_bytes() > 0, "the greeting should still be buffered"
        call.phone.say(phone.tone(1000))
        wait_for(lambda: call.phone.clears, timeout=10)
        clear_at, _dropped = call.phone.clears[0]
        heard_at_clear = max(n for t, n in call.phone.heard_log if t <= clear_at) / BYTES_PER_MS
        wait_for(lambda: not call.phone.speaking())
        # While the caller still talks no new response may start, so anything received after
        # the clear would be audio of the interrupted greeting.
        assert call.phone.received_after_clear == 0
        session = wait_for(lambda: (s := newest_session(stack))["truncations"] and s)
        truncation = session["truncations"][0]
        assert abs(truncation["audio_end_ms"] - heard_at_clear) <= 40, (
            truncation,
            heard_at_clear,
        )
        greeting = session["responses"][0]
        assert truncation["item_id"] == greeting["item_id"]
        assert greeting["status"] == "cancelled"
        # After the caller stops, the assistant answers and the caller hears it.
        wait_for(lambda: len(responses(stack)) >= 2, timeout=15)
        before = heard_ms(call)
        wait_for(lambda: heard_ms(call) > before + 200, timeout=15)
    finally:
        end_call(call)


# ==== voicemail ================================================================================
def test_voicemail_plays_every_byte_then_hangs_up_without_apology(stack: VoiceStack):
    call = stack.place_call(answered_by="machine_end_beep", speed=4)
    call.phone.start_line()
    assert call.phone.wait_closed(60), "the relay should end a voicemail call by itself"
    message = responses(stack)[0]
    assert message["text"] == prompts.greeting("voicemail")
    assert message["status"] == "completed"
    assert len(call.phone.heard) == message["audio_ms_sent"] * BYTES_PER_MS
    assert call.phone.unplayed_bytes() == 0 and not call.phone.clears
    assert call.phone.close_reason == "voicemail_left"
    assert newest_session(stack)["session"]["audio"]["input"]["turn_detection"] is None
    after = stack.after_stream(call)
    assert after.verbs == ["Hangup"] and not after.apologised


# ==== endings ==================================================================================
def test_stop_frees_the_upstream_and_logs_the_call_without_its_transcript(stack: VoiceStack):
    call = stack.place_call(speed=4)
    call.phone.start_line()
    wait_for(lambda: responses(stack, "completed"))
    call.phone.hang_up()
    wait_for(lambda: stack.open_sessions() == [])
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    assert r.get(f"gf:call_end:{call.sid}") == "caller_hung_up"
    log = wait_for(lambda: (t := stack.log_text("relay")) and "call ended" in t and t)
    line = next(ln for ln in log.splitlines() if call.sid in ln and "call ended" in ln)
    # INFO keeps the SID, duration, outcome and line counts; what was said is DEBUG only.
    assert "transcript lines (0 caller, 1 assistant)" in line and "caller_hung_up" in line
    assert prompts.GREETING_OPENING not in log


def test_upstream_drop_mid_call_apologises_and_spares_other_calls(stack: VoiceStack):
    steady = stack.place_call(speed=4)
    steady.phone.start_line()
    wait_for(lambda: responses(stack, "completed"))
    stack.realtime_fault(drop_after_ms=1500)
    try:
        doomed = stack.place_call(speed=4)
        doomed.phone.start_line()
        assert doomed.phone.wait_closed(20)
    finally:
        stack.realtime_fault(drop_after_ms=None)
    assert doomed.phone.close_reason == "upstream_lost"
    after = stack.after_stream(doomed)
    assert after.apologised and after.verbs[-1] == "Hangup"
    # The other call still talks with the assistant.
    before = heard_ms(steady)
    steady.phone.say(phone.tone(800))
    wait_for(lambda: heard_ms(steady) > before + 500, timeout=20)
    assert not steady.phone.closed.is_set()
    end_call(steady)
    wait_for(lambda: stack.open_sessions() == [])


# ==== bad input ================================================================================
def test_a_thousand_malformed_media_stream_frames_leave_the_call_working(stack: VoiceStack):
    bystander = stack.place_call(speed=4)
    bystander.phone.start_line()
    call = stack.place_call(speed=4)
    call.phone.start_line()
    wait_for(lambda: all(heard_ms(c) > 500 for c in (call, bystander)))
    ws = call.phone.ws
    assert ws is not None
    junk = [
        "{not json",
        "[]",
        "42",
        '{"event":"media","media":{"payload":"\\"},"x":"}"}',  # not base64: never spliced
        '{"event":"media","media":"nope"}',
        '{"event":"mark","mark":{"name":17}}',
        '{"event":"start","start":"what"}',
        '{"event":"teleport"}',
    ]
    for n in range(1000):
        ws.send(junk[n % len(junk)])
    # Both calls still talk with the assistant.
    for c in (call, bystander):
        before = heard_ms(c)
        c.phone.say(phone.tone(700))
        wait_for(lambda c=c, b=before: heard_ms(c) > b + 300, timeout=20)
        assert not c.phone.closed.is_set()
    end_call(call)
    end_call(bystander)
    log = stack.log_text("relay")
    assert "Traceback" not in log
    assert log.count("malformed Media Streams frame ignored") <= 3 * 2  # logged, not flooded


# ==== admission in Twilio mode =================================================================
def test_bad_or_replayed_tokens_are_closed_1008(stack: VoiceStack):
    bad = phone.Phone(stack.relay_url + "/token/not-a-token")
    bad.connect()
    assert bad.wait_closed(10) and bad.close_code == 1008
    call = stack.place_call(speed=4)
    end_call(call)
    replay = phone.Phone(call.target.url, call.target.params, auth_token=stack.auth_token)
    replay.connect()
    assert replay.wait_closed(10)
    assert (replay.close_code, replay.close_reason) == (1008, "token_replayed")


def test_upgrade_must_be_signed_by_twilio(stack: VoiceStack):
    """A stream upgrade without X-Twilio-Signature, or with a forged one, is refused (1008)
    before OpenAI is opened; the signed one is served."""
    r = redis.Redis.from_url(REDIS_URL)
    for signature in (None, "forged", "good"):
        sid = dial.new_call_sid()
        target = dial.voice_webhook(
            stack.web_url,
            stack.auth_token,
            call_sid=sid,
            from_="+14155550100",
            to="+14082605145",
        )
        # Twilio signs the wss:// URL exactly as the TwiML wrote it, with no parameters.
        good = RequestValidator(stack.auth_token).compute_signature(target.url, {})
        headers = (
            {}
            if signature is None
            else {"X-Twilio-Signature": good if signature == "good" else signature}
        )
        caller = phone.Phone(target.url, target.params, headers=headers, call_sid=sid)
        caller.connect()
        caller.start_line()
        if signature == "good":
            wait_for(lambda c=caller: len(c.heard) > 0)
            caller.hang_up()
            assert caller.wait_closed(10)
            continue
        assert caller.wait_closed(10)
        reason = "missing_signature" if signature is None else "bad_signature"
        assert (caller.close_code, caller.close_reason) == (1008, reason)
        assert caller.heard == bytearray()
        assert r.keys(f"*{sid}*") == []  # nothing of the refused call reached Redis
        log = stack.log_text("relay")
        assert f"upgrade {reason}" in log and "/token/…" in log


# ==== time cap =================================================================================
@pytest.fixture(scope="module")
def capped(voice_stack: Callable[..., VoiceStack]) -> VoiceStack:
    return voice_stack(relay_env={"SESSION_TIME_LIMIT_SECONDS": "3"})


def test_time_cap_says_goodbye_then_hangs_up(capped: VoiceStack, tmp_path: Path):
    call = capped.place_call(speed=4)
    call.phone.start_line()
    started = time.monotonic()
    assert call.phone.wait_closed(40)
    assert time.monotonic() - started >= 3
    goodbye = [r for r in newest_session(capped)["responses"] if r["status"] == "completed"][-1]
    assert goodbye["text"] == prompts.TIME_LIMIT_SENTENCE
    assert call.phone.close_reason == "time_limit"
    assert call.phone.unplayed_bytes() == 0
    after = capped.after_stream(call)
    assert after.verbs == ["Hangup"]
    phone.save_wav(bytes(call.phone.heard), tmp_path / "heard.wav")
