"""The GPT-Live call bridge without a network: Media Streams and Live events in, messages out,
time passed in. Every client event it sends is checked against ``openai.types.live``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from openai.types.live import ClientEvent
from pydantic import Field, TypeAdapter

from common import prompts
from relay.call.handover import LoadResume
from relay.call.live.bridge import SILENCE, LiveBridge
from relay.call.live.pacer import AHEAD_MS
from relay.call.outputs import EndCall, RunTool
from relay.call.reconnect import Reconnect
from relay.call.tool_specs import END_CALL, SEND_TEXT
from tests.relay.call.live.helpers import (
    CALL_SID,
    SID,
    audio,
    echo_marks,
    function_call,
    live_settings,
    make,
    media,
    openai_msgs,
    say,
    speech_frame,
    start_msg,
    started,
    transcript,
    twilio_msgs,
    with_tools,
)

CLIENT_EVENT: TypeAdapter[Any] = TypeAdapter(Annotated[ClientEvent, Field(discriminator="type")])


def valid(outs: list) -> list[dict]:
    """The OpenAI messages in ``outs``, each validated as a GPT-Live client event."""
    msgs = openai_msgs(outs)
    for msg in msgs:
        assert CLIENT_EVENT.validate_python(msg).model_dump(exclude_unset=True) == msg
    return msgs


def ended(outs: list) -> EndCall | None:
    return next((o for o in outs if isinstance(o, EndCall)), None)


def test_session_start_comes_first_then_the_greeting_once_started() -> None:
    bridge, opened, on_started = make(settings=with_tools())
    (start,) = valid(opened)
    session = start["session"]
    assert session["model"] == "gpt-live-1.1" and session["store"] is False
    assert session["audio"] == {
        "format": {"type": "audio/pcmu", "rate": 8000},
        "output": {"voice": "marin"},
    }
    delegation = session["delegation"]
    assert delegation["type"] == "responses" and delegation["responses"]["model"] == "gpt-5.5"
    names = [t["name"] for t in delegation["responses"]["tools"]]
    assert END_CALL in names and all(t["strict"] for t in delegation["responses"]["tools"])
    assert "end_call" in delegation["responses"]["instructions"]
    assert session["input"][0]["role"] == "developer"
    (greet,) = valid(on_started)
    assert greet["type"] == "session.instructions.append" and greet["delegation_id"] is None
    assert prompts.greeting("inbound") in greet["content"]
    assert bridge.on_openai({"type": "session.started", "session": {}}, 1.0) == []


def test_nothing_but_session_start_goes_before_session_started() -> None:
    bridge = LiveBridge(live_settings(), now=0.0, call_sid=CALL_SID)
    bridge.on_twilio(start_msg(direction="inbound"), 0.0)
    assert bridge.on_twilio(media(), 0.02) == []  # held: no upstream yet
    (start,) = valid(bridge.on_upstream_open(0.1))
    assert start["type"] == "session.start"
    assert bridge.on_twilio(media(), 0.12) == []  # held: the session has not started
    msgs = valid(started(bridge, 0.2))
    assert [m["type"] for m in msgs] == [
        "session.input_audio.append",
        "session.input_audio.append",
        "session.instructions.append",
    ]


def test_caller_audio_passes_through_byte_for_byte() -> None:
    bridge, _, _ = make()
    frame = media()
    (append,) = valid(bridge.on_twilio(frame, 0.02))
    assert append == {"type": "session.input_audio.append", "audio": frame["media"]["payload"]}
    bad = {"event": "media", "streamSid": SID, "media": {"payload": 'x"}'}}
    assert bridge.on_twilio(bad, 0.04) == [] and bridge.bad_media == 1


def test_assistant_audio_is_paced_so_little_waits_at_twilio() -> None:
    bridge, _, _ = make()
    outs = say(bridge, 2000, t=0.0)  # two seconds of speech arrive at once
    sent = [m for m in twilio_msgs(outs) if m["event"] == "media"]
    sent_ms = sum(len(m["media"]["payload"]) * 3 / 4 / 8 for m in sent)
    assert AHEAD_MS <= sent_ms < AHEAD_MS + 25
    later = bridge.on_twilio(media(), 1.0)  # a second later the caller's frame paces more out
    more = sum(
        len(m["media"]["payload"]) * 3 / 4 / 8 for m in twilio_msgs(later) if m["event"] == "media"
    )
    assert AHEAD_MS - 25 <= more <= AHEAD_MS + 25  # topped up to the same small lead


def test_caller_talking_over_the_assistant_clears_what_they_have_not_heard() -> None:
    bridge, _, _ = make()
    say(bridge, 2000, t=0.0)
    transcript(bridge, "assistant", "Our slide gates come in steel and wood", 0.1)
    outs = transcript(bridge, "caller", "wait", 0.15)
    assert {"event": "clear", "streamSid": SID} in twilio_msgs(outs)
    assert bridge.barge_ins == 1
    assert twilio_msgs(bridge.on_twilio(media(), 1.0)) == []  # nothing stale plays later
    bridge.on_tick(5.0)
    who = [w for w, _ in bridge.transcript.lines]
    assert who[0].startswith("assistant (interrupted at 0.1 s)") and who[1] == "caller"


def test_transcript_fragments_become_turns() -> None:
    bridge, _, _ = make()
    transcript(bridge, "caller", "I need ", 1.0)
    transcript(bridge, "caller", "a gate opener", 1.2)
    transcript(bridge, "assistant", "Sure, ", 2.0)
    transcript(bridge, "assistant", "which gate?", 2.1)
    transcript(bridge, "caller", "a swing gate", 4.0)
    bridge.on_tick(6.0)
    assert bridge.transcript.lines == [
        ("caller", "I need a gate opener"),
        ("assistant", "Sure, which gate?"),
        ("caller", "a swing gate"),
    ]


def speak_closing_line(bridge: LiveBridge, t: float) -> list:
    """The model says a one-second line at ``t``; every output until the call ended."""
    outs = say(bridge, 1000, t)
    transcript(bridge, "assistant", "Goodbye!", t)
    return played(bridge, outs, t)


def played(bridge: LiveBridge, outs: list, t: float) -> list:
    """Twilio plays what was sent as caller frames and ticks go on; every output until the
    call ended (or 60 s passed)."""
    seen = list(outs)
    end = t + 60.0
    while not ended(seen) and t < end:
        t += 0.1
        outs = echo_marks(bridge, outs, t) + bridge.on_twilio(media(), t) + bridge.on_tick(t)
        seen += outs
    return seen


def test_end_call_outputs_every_result_then_one_response_create_and_hangs_up_once_heard() -> None:
    bridge, _, _ = make(settings=with_tools())
    msgs = valid(bridge.on_openai(function_call("c1", END_CALL, "{}"), 1.0))
    assert [m["type"] for m in msgs] == ["response.item.create", "response.create"]
    assert msgs[0]["item"] == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": prompts.TOOL_END_CALL_OUTPUT,
    }
    assert bridge.on_openai(function_call("c1", END_CALL, "{}"), 1.1) == []  # seen once
    assert bridge.on_twilio(media(), 1.2) == []  # the caller cannot cut the goodbye off
    assert ended(speak_closing_line(bridge, 2.0)) == EndCall("assistant_hung_up", True)


def test_a_pending_action_holds_the_batch_until_its_result() -> None:
    bridge, _, _ = make(settings=with_tools())
    outs = bridge.on_openai(function_call("c1", SEND_TEXT, json.dumps({"message": "hi"})), 1.0)
    (run,) = [o for o in outs if isinstance(o, RunTool)]
    assert openai_msgs(outs) == []
    bad = bridge.on_openai(function_call("c2", SEND_TEXT, json.dumps({"text": "x"})), 1.1)
    assert openai_msgs(bad) == []  # c1 is still running: no partial batch
    msgs = valid(bridge.on_tool_result(run.outcome, "sent", 2.0))
    assert [m["type"] for m in msgs] == [
        "response.item.create",
        "response.item.create",
        "response.create",
    ]
    outputs = {m["item"]["call_id"]: m["item"]["output"] for m in msgs[:2]}
    assert "missing field 'message'" in outputs["c2"] and "unexpected field 'text'" in outputs["c2"]
    assert outputs["c1"].startswith("Sent.")


def test_time_cap_says_goodbye_and_ends_once_heard() -> None:
    bridge, _, _ = make(settings=live_settings(time_limit_s=10.0))
    msgs = valid(bridge.on_tick(10.0))
    assert msgs[-1]["type"] == "session.instructions.append"
    assert prompts.TIME_LIMIT_SENTENCE in msgs[-1]["content"]
    assert ended(speak_closing_line(bridge, 11.0)) == EndCall("time_limit", True)


def test_voicemail_is_left_only_when_the_whole_message_was_said_and_heard() -> None:
    bridge, _, greeting = make({"direction": "outbound", "amd": "machine_end_beep"})
    (ask,) = valid(greeting)
    message = prompts.greeting("voicemail")
    assert message in ask["content"]
    (append,) = valid(bridge.on_twilio(media(), 0.5))
    assert append["audio"] == SILENCE  # the machine's beep never reaches the model
    outs = say(bridge, 1000, 1.0)
    transcript(bridge, "assistant", message, 1.0)
    outs = played(bridge, outs, 1.0)
    assert ended(outs) == EndCall("voicemail_left", True)


def test_a_voicemail_cut_short_is_never_reported_as_left() -> None:
    bridge, _, _ = make({"direction": "outbound", "amd": "machine_end_beep"})
    outs = say(bridge, 500, 1.0)
    transcript(bridge, "assistant", "Sorry we missed", 1.0)
    outs = played(bridge, outs, 1.0)
    assert ended(outs) == EndCall("voicemail_failed", False)


@pytest.mark.parametrize(("reason", "end"), [("content", "upstream_lost"), ("expired", None)])
def test_session_closed_reasons(reason: str, end: str | None) -> None:
    bridge, _, _ = make()
    outs = bridge.on_openai({"type": "session.closed", "reason": reason, "session": {}}, 1.0)
    assert (ended(outs).reason if ended(outs) else None) == end


def test_an_error_before_the_session_started_ends_with_the_apology() -> None:
    bridge = LiveBridge(live_settings(), now=0.0, call_sid=CALL_SID)
    bridge.on_twilio(start_msg(direction="inbound"), 0.0)
    bridge.on_upstream_open(0.0)
    error = {"type": "unknown_parameter", "code": "unknown_parameter", "message": "x"}
    outs = bridge.on_openai({"type": "error", "error": error}, 0.1)
    assert ended(outs) == EndCall("upstream_lost", False)


def test_a_dropped_session_reconnects_with_the_conversation_and_no_second_greeting() -> None:
    bridge, _, _ = make()
    say(bridge, 200, 0.5)
    transcript(bridge, "assistant", "Hello, this is GateFrames.", 0.5)
    transcript(bridge, "caller", "I need a gate", 2.0)
    bridge.on_tick(4.0)
    (attempt,) = bridge.on_upstream_closed(5.0)
    assert isinstance(attempt, Reconnect)
    assert bridge.on_twilio(media(), 5.1) == []  # caller audio in the gap is dropped
    (start,) = valid(bridge.on_upstream_open(5.3))
    roles = [(m["role"], m["content"][0]["text"]) for m in start["session"]["input"][1:]]
    assert roles == [("assistant", "Hello, this is GateFrames."), ("user", "I need a gate")]
    assert valid(started(bridge, 5.4)) == []  # already greeted, a short gap: nothing to say
    assert bridge.gaps == [pytest.approx(0.3)]


def test_a_handed_over_call_resumes_with_its_history() -> None:
    bridge, _, _ = make()
    say(bridge, 200, 0.5)  # the greeting began: the new relay must not greet again
    transcript(bridge, "caller", "hello", 1.0)
    state = bridge.hand_over(2.0)
    assert state is not None and state.lines == [("caller", "hello")]
    new = LiveBridge(live_settings(), now=10.0, call_sid=CALL_SID)
    outs = new.on_twilio(start_msg(direction="inbound", resume="r1"), 10.0)
    assert outs == [LoadResume("r1")]
    assert new.on_upstream_open(10.1) == []  # no session until the state is loaded
    (start,) = valid(new.on_resume(state, 10.2, 0.5))
    assert start["session"]["input"][1]["content"][0]["text"] == "hello"
    assert valid(started(new, 10.3)) == []  # no greeting on a resumed call
    assert new.transcript.lines == [("caller", "hello")]


def test_audio_for_a_stream_not_started_is_dropped() -> None:
    bridge = LiveBridge(live_settings(), now=0.0, call_sid=CALL_SID)
    delta = {"type": "session.output_audio.delta", "delta": audio(100)}
    assert bridge.on_openai(delta, 0.0) == []


def test_caller_speech_on_the_line_clears_queued_audio_before_any_transcript() -> None:
    bridge, _, _ = make()
    say(bridge, 2000, t=0.0)
    loud = {"event": "media", "streamSid": SID, "media": {"payload": speech_frame()}}
    outs: list = []
    for i in range(4):  # 80 ms of speech: enough to be the caller, not a click
        outs += bridge.on_twilio(loud, 0.1 + i * 0.02)
    assert {"event": "clear", "streamSid": SID} in twilio_msgs(outs)
    assert bridge.barge_ins == 1


def test_a_click_or_silence_does_not_stop_the_assistant() -> None:
    bridge, _, _ = make()
    say(bridge, 2000, t=0.0)
    loud = {"event": "media", "streamSid": SID, "media": {"payload": speech_frame()}}
    outs = bridge.on_twilio(loud, 0.1) + bridge.on_twilio(media(), 0.12)  # one frame, then quiet
    outs += bridge.on_twilio(loud, 0.14)
    assert {"event": "clear", "streamSid": SID} not in twilio_msgs(outs)
    assert bridge.barge_ins == 0
