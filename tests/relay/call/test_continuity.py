"""Calls that survive, without a network: reconnect after an upstream drop (replay as heard,
backoff, the time cap from the call's start), handover to another relay and resume, and the
stream bound to its call. Every event for OpenAI is checked against the GA client-event types
(the Realtime simulator's strict check)."""

from __future__ import annotations

import json

import orjson
import pytest

from common import prompts
from relay.call.bridge import TwilioBridge
from relay.call.handover import CallState, LoadResume
from relay.call.outputs import EndCall, ToOpenAI
from relay.call.reconnect import Reconnect
from relay.call.settings import BridgeSettings
from sandbox.realtime_sim import schema
from tests.relay.call.helpers import (
    CALL_SID,
    SID,
    audio,
    make,
    openai_msgs,
    speak,
    start_msg,
    twilio_msgs,
)


def ga_valid(outs: list) -> list[dict]:
    """The OpenAI-bound events, each one accepted by the GA schema."""
    msgs = openai_msgs(outs)
    for raw in (o.text for o in outs if isinstance(o, ToOpenAI)):
        assert schema.check(raw, orjson.loads(raw)) is None, raw
    return msgs


def caller_says(bridge: TwilioBridge, text: str, now: float) -> None:
    event = {"type": "conversation.item.input_audio_transcription.completed", "transcript": text}
    bridge.on_openai(event, now)


def finish(bridge: TwilioBridge, response: str, text: str, now: float) -> None:
    bridge.on_openai(
        {
            "type": "response.output_audio_transcript.done",
            "response_id": response,
            "transcript": text,
        },
        now,
    )
    bridge.on_openai(
        {"type": "response.done", "response": {"id": response, "status": "completed"}}, now
    )


def greeted(**kw) -> TwilioBridge:
    """A call whose greeting was spoken and heard, then the caller asked something."""
    bridge, _ = make(**kw)
    speak(bridge, "resp_g", "item_g", 5, 100, 0.1)
    finish(bridge, "resp_g", "Thanks for calling GateFrames.", 0.2)
    caller_says(bridge, "Do you sell slide gates?", 2.0)
    return bridge


def transcript_delta(bridge: TwilioBridge, response: str, text: str, now: float) -> None:
    event = {"type": "response.output_audio_transcript.delta", "response_id": response}
    bridge.on_openai({**event, "delta": text}, now)


# ==== reconnect ================================================================================
def test_drop_mid_answer_reconnects_and_replays_the_call_so_far() -> None:
    bridge = greeted()
    speak(bridge, "resp_a", "item_a", 10, 100, 2.5)  # an answer under way
    transcript_delta(bridge, "resp_a", "Yes, we sell slide gates in", 2.5)
    outs = bridge.on_upstream_closed(2.6)
    assert outs == [Reconnect(0.2, pytest.approx(4.8))]
    # Caller audio in the gap is dropped, not queued for the new session.
    assert bridge.on_twilio({"event": "media", "media": {"payload": audio(20)}}, 2.7) == []
    outs = bridge.on_upstream_open(2.9)
    msgs = ga_valid(outs)
    assert [m["type"] for m in msgs] == ["session.update"] + ["conversation.item.create"] * 3 + [
        "response.create"
    ]
    first_session = openai_msgs(make()[1])[0]
    assert msgs[0] == first_session  # the same configuration
    items = [m["item"] for m in msgs[1:4]]
    assert [(i["role"], i["content"][0]) for i in items] == [
        ("assistant", {"type": "output_text", "text": "Thanks for calling GateFrames."}),
        ("user", {"type": "input_text", "text": "Do you sell slide gates?"}),
        ("assistant", {"type": "output_text", "text": "Yes, we sell slide gates in"}),
    ]
    assert msgs[4] == {"type": "response.create"}  # finish the cut answer; no greeting
    assert not any(prompts.greeting("inbound") in json.dumps(m) for m in msgs)
    assert bridge.gaps == [pytest.approx(0.3)]
    # Caller audio flows again.
    assert bridge.on_twilio({"event": "media", "media": {"payload": audio(20)}}, 3.0) != []


def test_replayed_replies_are_what_the_caller_heard() -> None:
    bridge = greeted()
    speak(bridge, "resp_a", "item_a", 10, 100, 2.5)  # 1 s of audio at once
    bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 2.9)  # 0.4 s heard
    text = "Yes, we sell slide gates in three widths and two finishes."
    finish(bridge, "resp_a", text, 2.9)
    bridge.on_upstream_closed(5.0)
    msgs = ga_valid(bridge.on_upstream_open(5.2))
    said = msgs[3]["item"]["content"][0]["text"]
    assert said.endswith("…") and text.startswith(said[:-1])
    assert 0.3 * len(text) <= len(said) <= 0.45 * len(text)  # 40 % heard, at a word boundary
    # The log keeps the whole reply, labelled.
    assert bridge.transcript.lines[-1] == ("assistant (interrupted at 0.4 s)", text)
    # Nothing was under way: no response is asked for.
    assert [m["type"] for m in msgs][-1] == "conversation.item.create"


def test_a_long_gap_starts_with_a_short_apology() -> None:
    bridge = greeted()
    bridge.on_upstream_closed(3.0)
    bridge.on_upstream_closed(3.2)  # the first attempt failed
    msgs = ga_valid(bridge.on_upstream_open(4.8))  # 1.8 s without OpenAI
    create = msgs[-1]
    assert create["type"] == "response.create"
    assert "Sorry, one moment." in create["response"]["instructions"]
    assert create["response"]["instructions"].startswith("Speak fast.")


def test_backoff_then_the_apology_when_every_attempt_fails() -> None:
    bridge = greeted(reconnect_attempts=3)
    delays = []
    now = 3.0
    for _ in range(3):
        [attempt] = bridge.on_upstream_closed(now)
        delays.append(attempt.delay_s)
        now += attempt.delay_s + 0.1
    assert delays == [0.2, 0.4, 0.8]
    assert bridge.on_upstream_closed(now) == [EndCall("upstream_lost", deliberate=False)]


def test_a_flapping_upstream_shares_one_allowance() -> None:
    bridge = greeted(reconnect_attempts=2)
    assert isinstance(bridge.on_upstream_closed(3.0)[0], Reconnect)
    bridge.on_upstream_open(3.2)
    assert isinstance(bridge.on_upstream_closed(4.0)[0], Reconnect)
    bridge.on_upstream_open(4.2)
    assert bridge.on_upstream_closed(5.0) == [EndCall("upstream_lost", deliberate=False)]


def test_a_greeting_nobody_heard_is_asked_for_again() -> None:
    bridge, _ = make()
    bridge.on_openai({"type": "response.created", "response": {"id": "resp_g"}}, 0.1)
    bridge.on_upstream_closed(0.2)
    msgs = ga_valid(bridge.on_upstream_open(0.4))
    assert [m["type"] for m in msgs] == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]
    assert prompts.greeting("inbound") in msgs[1]["item"]["content"][0]["text"]


def test_a_greeting_partly_heard_is_not_repeated() -> None:
    bridge, _ = make()
    speak(bridge, "resp_g", "item_g", 3, 100, 0.1)
    transcript_delta(bridge, "resp_g", "Thanks for calling", 0.1)
    bridge.on_upstream_closed(0.2)
    msgs = ga_valid(bridge.on_upstream_open(0.4))
    assert [m["type"] for m in msgs] == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]
    assert msgs[1]["item"]["role"] == "assistant"  # what was heard, then "carry on"


def test_time_cap_counts_from_the_call_start_across_reconnects() -> None:
    bridge = greeted(time_limit_s=5.0)
    bridge.on_upstream_closed(3.0)
    bridge.on_upstream_open(3.2)
    assert bridge.on_tick(4.9) == []
    [goodbye] = openai_msgs(bridge.on_tick(5.0))
    assert prompts.TIME_LIMIT_SENTENCE in goodbye["response"]["instructions"]


def test_barge_in_over_audio_of_a_dead_session_sends_no_truncate() -> None:
    bridge = greeted()
    speak(bridge, "resp_a", "item_a", 10, 100, 2.5)
    bridge.on_upstream_closed(2.6)
    bridge.on_upstream_open(2.8)
    outs = bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 3.0)
    assert twilio_msgs(outs) == [{"event": "clear", "streamSid": SID}]
    assert "conversation.item.truncate" not in [m["type"] for m in openai_msgs(outs)]


# ==== handover and resume ======================================================================
def test_hand_over_saves_the_call_and_the_old_stream_ends_quietly() -> None:
    bridge = greeted(time_limit_s=600.0)
    speak(bridge, "resp_a", "item_a", 10, 100, 4.0)
    transcript_delta(bridge, "resp_a", "Yes, we sell slide gates in three widths.", 4.0)
    state = bridge.hand_over(4.5)  # half of the answer played
    assert state is not None
    assert (state.call_sid, state.kind, state.voicemail) == (CALL_SID, "inbound", False)
    assert state.used_s == pytest.approx(4.5) and state.continue_reply and state.greeting_spoken
    assert state.turns[-1][0] == "assistant" and state.turns[-1][1].endswith("…")
    assert state.lines[-1][0] == "assistant (cut by a relay handover)"
    assert CallState.from_json(state.to_json()) == state
    # Frozen: caller audio goes nowhere, the closed upstream is not redialled.
    assert bridge.on_twilio({"event": "media", "media": {"payload": audio(20)}}, 4.6) == []
    assert bridge.on_upstream_closed(4.6) == []
    # Twilio moved the call: its stop is not the caller hanging up (nothing recorded).
    assert bridge.on_twilio({"event": "stop", "streamSid": SID}, 4.8) == [
        EndCall("handed_over", deliberate=False)
    ]


def resumed(state: CallState | None, now: float = 100.0, **kw) -> tuple[TwilioBridge, list]:
    bridge = TwilioBridge(BridgeSettings(model="gpt-realtime-2.1", **kw), now, call_sid=CALL_SID)
    outs = bridge.on_twilio(start_msg(direction="inbound", resume="r1"), now)
    assert outs == [LoadResume("r1")]
    bridge.on_upstream_open(now)
    return bridge, bridge.on_resume(state, now + 0.1, 0.4)


def test_resume_replays_without_a_greeting_and_keeps_the_time_used() -> None:
    old = greeted(time_limit_s=10.0)
    speak(old, "resp_a", "item_a", 10, 100, 4.0)
    transcript_delta(old, "resp_a", "Yes, we sell slide gates.", 4.0)
    state = old.hand_over(4.5)
    bridge, outs = resumed(state, time_limit_s=10.0)
    msgs = ga_valid(outs)
    assert [m["type"] for m in msgs] == ["session.update"] + ["conversation.item.create"] * 3 + [
        "response.create"
    ]
    assert not any(prompts.greeting("inbound") in json.dumps(m) for m in msgs)
    assert bridge.transcript.lines == state.lines  # the transcript stays whole
    # 4.5 s were used on the first relay: the cap (10 s) comes 5.5 s after the resume.
    assert bridge.on_tick(100.1 + 5.3) == []
    assert openai_msgs(bridge.on_tick(100.1 + 5.6))[-1]["type"] == "response.create"


def test_resume_without_state_carries_on_without_a_greeting() -> None:
    bridge, outs = resumed(None)
    assert [m["type"] for m in ga_valid(outs)] == ["session.update"]
    assert bridge.ended is None


def test_a_call_that_has_not_started_cannot_be_handed_over() -> None:
    bridge = TwilioBridge(BridgeSettings(model="gpt-realtime-2.1"), 0.0, call_sid=CALL_SID)
    assert bridge.hand_over(1.0) is None
    assert bridge.on_handover_failed() == [EndCall("server_shutdown", deliberate=False)]


# ==== the stream is bound to its call ==========================================================
@pytest.mark.parametrize("bound", ["CA" + "9" * 32, ""])
def test_a_stream_for_another_call_is_closed_1008(bound: str) -> None:
    bridge = TwilioBridge(BridgeSettings(model="gpt-realtime-2.1"), 0.0, call_sid=bound)
    outs = bridge.on_twilio(start_msg(direction="inbound"), 0.0)
    assert outs == [EndCall("call_sid_mismatch", deliberate=False, close_code=1008)]
    assert bridge.on_upstream_open(0.1) == []  # nothing reaches OpenAI
    assert bridge.call_sid == bound  # never the stream's: Redis keys stay the token's
