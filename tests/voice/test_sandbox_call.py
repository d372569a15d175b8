"""`python -m sandbox call`, the operator's phone call without a phone, run as a subprocess
against the voice stack (web, relay, Realtime and Twilio simulators)."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL
from tests.support import PYTHON, base_env, wait_for
from tests.voice.stack import VoiceStack

pytestmark = pytest.mark.usefixtures("redis_url")

STAFF = "+14155550177"


# DEBUG: the relay logs whole call transcripts only at that level.
STACK_OPTIONS = {"relay_env": {"LOG_LEVEL": "DEBUG"}, "env": {"STAFF_TRANSFER_NUMBER": STAFF}}


def sandbox_call(stack: VoiceStack, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [PYTHON, "-m", "sandbox", "call", "--web", stack.web_url]
    cmd += ["--auth-token", stack.auth_token, "--redis-url", REDIS_URL, "--max-seconds", "45"]
    done = subprocess.run(
        [*cmd, *args], env=base_env(), capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        print(done.stdout, done.stderr, stack.logs())
    return done


def relay_log(stack: VoiceStack) -> list[str]:
    return stack.log_text("relay").splitlines()


def test_call_waits_for_the_greeting_then_gets_an_answer(stack: VoiceStack, tmp_path: Path):
    heard = tmp_path / "heard.wav"
    done = sandbox_call(stack, "--out", str(heard))
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    # The live transcript (Redis pub/sub from the relay): greeting, caller, answer, in order.
    said = [ln.strip() for ln in out if ln.startswith("  ")]
    assert [ln.split(":")[0] for ln in said] == ["assistant", "caller", "assistant"], out
    assert said[0].startswith("assistant: Hello, this is the GateFrames.com A.I. assistant.")
    assert "0 barge-in clear(s)" in done.stdout  # a polite caller lets the greeting finish
    assert "after the stream Twilio would: Hangup" in done.stdout
    with wave.open(str(heard)) as wav:
        assert wav.getframerate() == 8000 and wav.getnchannels() == 1
        assert wav.getnframes() / 8000 > 4.0  # the greeting and the answer, seconds of audio


def test_call_that_speaks_early_interrupts_the_greeting(stack: VoiceStack):
    done = sandbox_call(stack, "--listen-first", "1")
    assert done.returncode == 0, done.stderr
    assert "1 barge-in clear(s)" in done.stdout
    # The cut-off greeting stays in the call's transcript, marked as such.
    sid = done.stdout.split()[1].rstrip(":")
    ended = wait_for(
        lambda: [ln for ln in relay_log(stack) if sid in ln and "call transcript" in ln]
    )
    assert "assistant (interrupted at " in ended[0]


def test_voicemail_call_leaves_the_message_and_hangs_up(stack: VoiceStack):
    done = sandbox_call(stack, "--answered-by", "machine_end_beep")
    assert done.returncode == 0, done.stderr
    assert "stream closed (1000 'voicemail_left')" in done.stdout
    assert "after the stream Twilio would: Hangup" in done.stdout
    assert "Sorry" not in done.stdout.split("Twilio would:")[1]  # no apology


def test_web_unreachable_is_a_clear_error(stack: VoiceStack):
    done = subprocess.run(
        [PYTHON, "-m", "sandbox", "call", "--web", "http://127.0.0.1:9"],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "voice webhook failed at http://127.0.0.1:9" in done.stderr


def test_say_transfer_shows_the_transfer_twilio_runs(stack: VoiceStack):
    stack.realtime_reset()
    stack.staff_phone(STAFF, answer=True, ring_seconds=0.5, talk_seconds=0.5)
    done = sandbox_call(
        stack,
        "--say",
        "transfer me to a person",
        "--twilio-sim",
        stack.twilio_url,
        "--realtime-sim",
        stack.realtime_http,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "the relay redirected the call (Calls API update)" in out
    assert "/twilio/voice/transfer (update): HTTP 200" in out
    assert f"<Dial> {STAFF} from +14082605145: completed" in out
    assert 'staff heard "GateFrames call transfer' in out and "transfer me to a person" in out
    # The live transcript shows the tool call.
    assert "tool: transfer_to_staff(reason='transfer me to a person') -> ok" in out
