"""A call's ``session.update`` names the configured caller-side transcription, end to end: the
web's TwiML, the relay, and the Realtime simulator's strict check of what it received."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import wait_for
from tests.voice.stack import VoiceStack

pytestmark = pytest.mark.usefixtures("redis_url")

STACK_OPTIONS = {
    "env": {
        "OPENAI_TRANSCRIPTION_MODEL": "gpt-transcribe",
        "TRANSCRIPTION_KEYWORDS": "GateFrames, RicsList, swing gate",
    }
}


def call_transcription(stack: VoiceStack) -> dict:
    """Place a call, wait for its greeting; what the simulator applied to the session."""
    call = stack.place_call(speed=4)
    call.phone.start_line()
    try:
        wait_for(lambda: [r for r in stack.newest_session()["responses"] if r["text"]])
        session = stack.newest_session()
        assert session["errors"] == []  # the session.update was accepted as sent
        return session["session"]["audio"]["input"]["transcription"]
    finally:
        call.phone.hang_up()
        call.phone.wait_closed(10)


def test_a_call_names_the_configured_transcription(stack: VoiceStack):
    assert call_transcription(stack) == {
        "model": "gpt-transcribe",
        "keywords": ["GateFrames", "RicsList", "swing gate"],
    }
    # A model with no announced shutdown: no process warns of it.
    for process in ("relay", "web"):
        assert not [r for r in stack.log_records(process) if "model lifetime" in r.get("msg", "")]


def test_a_model_without_keywords_gets_none(voice_stack: Callable[..., VoiceStack]):
    """gpt-realtime-whisper takes no ``keywords`` (the SDK's types): the relay leaves them out,
    so the simulator's strict check accepts the session instead of refusing it."""
    stack = voice_stack(env={"OPENAI_TRANSCRIPTION_MODEL": "gpt-realtime-whisper"})
    assert call_transcription(stack) == {"model": "gpt-realtime-whisper"}
