"""A voicemail left by the assistant is texted to VOICEMAIL_NOTIFY_TO, once: relay → Celery
worker → Twilio Messages (simulated), with real processes throughout."""

from __future__ import annotations

import json
import urllib.request

import pytest

from common import prompts
from tests.support import http_json, wait_for
from tests.voice.stack import BOT_NUMBER, CALLER, VoiceStack

pytestmark = pytest.mark.usefixtures("redis_url")

OWNER = "+14155550199"


STACK_OPTIONS = {"env": {"VOICEMAIL_NOTIFY_TO": OWNER}, "worker": True}


def notice_logs(stack: VoiceStack) -> list[dict]:
    lines = stack.log_text("worker").splitlines()
    events = [json.loads(ln) for ln in lines if ln.startswith("{")]
    return [e for e in events if e.get("msg") == "voicemail notice handled"]


def test_voicemail_left_on_an_outbound_call_is_texted_to_the_owner(stack: VoiceStack):
    call = stack.place_call(answered_by="machine_end_beep", outbound=True, speed=4)
    assert call.phone.wait_closed(60)
    assert call.phone.close_reason == "voicemail_left"
    [sms] = wait_for(lambda: stack.twilio_state()["sms"], timeout=60)
    assert (sms["to"], sms["from"]) == (OWNER, BOT_NUMBER)
    assert f"left a voicemail for {CALLER} (call {call.sid})" in sms["body"]
    assert prompts.greeting("voicemail")[:40] in sms["body"]
    handled = wait_for(lambda: notice_logs(stack))
    assert [(e["outcome"], e["call_sid"]) for e in handled] == [("sent", call.sid)]
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.relay_port}/metrics") as resp:
        assert 'relay_voicemail_notices_total{outcome="queued"} 1.0' in resp.read().decode()
    assert len(stack.twilio_state()["sms"]) == 1


def test_twilio_failing_once_is_retried_and_still_texts_once(stack: VoiceStack):
    fault = {"method": "POST", "path_contains": "/Messages.json", "status": 503, "count": 1}
    http_json("POST", f"http://127.0.0.1:{stack.twilio_port}/_sandbox/faults", fault)
    call = stack.place_call(answered_by="machine_end_beep", outbound=True, speed=4)
    assert call.phone.wait_closed(60)
    sms = wait_for(lambda: [m for m in stack.twilio_state()["sms"] if call.sid in m["body"]], 60)
    assert len(sms) == 1
    handled = wait_for(lambda: [e for e in notice_logs(stack) if e["call_sid"] == call.sid])
    assert [e["outcome"] for e in handled] == ["sent"]
    worker = stack.log_text("worker")
    assert "voicemail notice failed, retrying" in worker


def realtime_statuses(stack: VoiceStack) -> list[str]:
    return [r["status"] for r in stack.sessions()[-1]["responses"]]


def test_a_failed_voicemail_is_retried_once_and_never_reported_unless_spoken(stack: VoiceStack):
    # OpenAI fails the message twice (status "failed", as a rate limit or server error does):
    # one retry, then the apology path, and no "voicemail left" anywhere.
    stack.realtime_reset()
    stack.realtime_fault(fail_responses=2, fail_code="server_error")
    failed = stack.place_call(answered_by="machine_end_beep", outbound=True, speed=4)
    assert failed.phone.wait_closed(60)
    assert failed.phone.close_reason == "voicemail_failed"
    assert realtime_statuses(stack) == ["failed", "failed"]
    after = stack.after_stream(failed)
    assert after.apologised and after.verbs[-1] == "Hangup"
    relay_log = stack.log_text("relay")
    errors = [json.loads(ln) for ln in relay_log.splitlines() if ln.startswith("{")]
    failures = [e for e in errors if e.get("call_sid") == failed.sid and e.get("status")]
    assert [(e["level"], e["status"], e["reason"]) for e in failures] == [
        ("ERROR", "failed", "server_error")
    ] * 2
    # The next call's first attempt fails once: it is asked for again, spoken and reported.
    stack.realtime_reset()
    stack.realtime_fault(fail_responses=1)
    left = stack.place_call(answered_by="machine_end_beep", outbound=True, speed=4)
    assert left.phone.wait_closed(60)
    assert left.phone.close_reason == "voicemail_left"
    assert realtime_statuses(stack) == ["failed", "completed"]
    assert len(left.phone.heard) == stack.sessions()[-1]["responses"][1]["audio_ms_sent"] * 8
    assert not stack.after_stream(left).apologised
    # The second call's notice is handled after the first call ended, so by now a notice of
    # the failed call would have been handled too: there is none.
    wait_for(lambda: [e for e in notice_logs(stack) if e["call_sid"] == left.sid], timeout=60)
    sids = [e["call_sid"] for e in notice_logs(stack)]
    assert failed.sid not in sids and sids.count(left.sid) == 1
    sms = stack.twilio_state()["sms"]
    assert not [m for m in sms if failed.sid in m["body"]]
    assert len([m for m in sms if left.sid in m["body"]]) == 1
