"""The call bridge without a network: events in, messages out, time passed in."""

from __future__ import annotations

import pytest

from common import prompts
from relay.call.bridge import TwilioBridge
from relay.call.outputs import EndCall
from relay.call.playback import PlaybackTracker, b64_decoded_len
from relay.call.settings import BridgeSettings
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


def test_start_sends_ga_session_then_greeting() -> None:
    _, outs = make({"direction": "inbound"}, voice="marin")
    msgs = openai_msgs(outs)
    assert [m["type"] for m in msgs] == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]
    session = msgs[0]["session"]
    assert session["type"] == "realtime"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"] == {"format": {"type": "audio/pcmu"}, "voice": "marin"}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["audio"]["input"]["transcription"]["model"]
    assert session["instructions"].startswith("Speak fast.")
    text = msgs[1]["item"]["content"][0]["text"]
    assert prompts.greeting("inbound") in text


@pytest.mark.parametrize(
    "params, kind",
    [
        ({"direction": "outbound"}, "outbound"),
        ({}, "unknown"),
        ({"direction": "outbound", "amd": "machine_end_beep"}, "voicemail"),
    ],
)
def test_greeting_per_direction(params: dict, kind: str) -> None:
    bridge, outs = make(params)
    assert bridge.info.kind == kind
    assert prompts.greeting(kind) in openai_msgs(outs)[1]["item"]["content"][0]["text"]


def test_media_passes_through_untouched() -> None:
    bridge, _ = make()
    outs = bridge.on_twilio(
        {
            "event": "media",
            "streamSid": SID,
            "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": "f/9/fw=="},
        },
        0.02,
    )
    assert [o.text for o in outs] == ['{"type":"input_audio_buffer.append","audio":"f/9/fw=="}']


def test_delta_becomes_media_then_unique_mark() -> None:
    bridge, _ = make()
    outs = speak(bridge, "resp_1", "item_1", 2, 100, 1.0)
    msgs = twilio_msgs(outs)
    assert [m["event"] for m in msgs] == ["media", "mark", "media", "mark"]
    assert msgs[0]["media"]["payload"] == audio(100) and msgs[0]["streamSid"] == SID
    assert msgs[1]["mark"]["name"] != msgs[3]["mark"]["name"]


def test_barge_in_truncates_at_audio_played() -> None:
    bridge, _ = make()
    outs = speak(bridge, "resp_1", "item_1", 10, 100, 1.0)  # 1 s of audio sent at t=1.0
    marks = [m["mark"]["name"] for m in twilio_msgs(outs) if m["event"] == "mark"]
    bridge.on_twilio({"event": "mark", "streamSid": SID, "mark": {"name": marks[0]}}, 1.1)
    bridge.on_twilio({"event": "mark", "streamSid": SID, "mark": {"name": marks[1]}}, 1.2)
    outs = bridge.on_openai(
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 900, "item_id": "user_1"},
        1.23,
    )
    tw, oa = twilio_msgs(outs), openai_msgs(outs)
    assert tw == [{"event": "clear", "streamSid": SID}]
    assert [m["type"] for m in oa] == ["response.cancel", "conversation.item.truncate"]
    assert oa[1]["item_id"] == "item_1" and oa[1]["content_index"] == 0
    assert abs(oa[1]["audio_end_ms"] - 230) <= 1
    assert bridge.barge_ins == 1
    # Marks flushed by clear echo back: ignored. Late deltas of the old response: dropped.
    for name in marks[2:]:
        assert (
            bridge.on_twilio({"event": "mark", "streamSid": SID, "mark": {"name": name}}, 1.3) == []
        )
    late = bridge.on_openai(
        {
            "type": "response.output_audio.delta",
            "response_id": "resp_1",
            "item_id": "item_1",
            "delta": audio(100),
        },
        1.3,
    )
    assert late == []


def test_truncate_is_clamped_to_audio_sent() -> None:
    bridge, _ = make()
    speak(bridge, "resp_1", "item_1", 3, 100, 1.0)  # 300 ms sent
    outs = bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 1.29)
    [trunc] = [m for m in openai_msgs(outs) if m["type"] == "conversation.item.truncate"]
    assert trunc["audio_end_ms"] == 290
    assert all(i.played_at(99.0) <= i.sent_ms for i in bridge.playback.items.values())
    bridge2, _ = make()
    speak(bridge2, "resp_1", "item_1", 3, 100, 1.0)
    bridge2.on_openai({"type": "response.done", "response": {"id": "resp_1"}}, 1.05)
    # Everything has played by t=5: nothing to interrupt, no cancel.
    assert bridge2.on_openai({"type": "input_audio_buffer.speech_started"}, 5.0) == []


def test_no_cancel_when_no_response_active() -> None:
    bridge, _ = make()
    speak(bridge, "resp_1", "item_1", 5, 100, 1.0)
    bridge.on_openai({"type": "response.done", "response": {"id": "resp_1"}}, 1.01)
    outs = bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 1.2)
    types = [m["type"] for m in openai_msgs(outs)]
    assert types == ["conversation.item.truncate"]
    assert twilio_msgs(outs) == [{"event": "clear", "streamSid": SID}]


def test_voicemail_hangs_up_only_after_message_played() -> None:
    bridge, outs = make({"amd": "machine_end_beep", "direction": "outbound"})
    assert openai_msgs(outs)[0]["session"]["audio"]["input"]["turn_detection"] is None
    speak(bridge, "resp_v", "item_v", 30, 100, 1.0)  # a 3 s message
    # A caller's (machine's) noise does not barge in on a voicemail.
    assert bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 1.5) == []
    done = {"id": "resp_v", "status": "completed", "status_details": None}
    outs = bridge.on_openai({"type": "response.done", "response": done}, 1.1)
    assert bridge.ended is None  # hanging up here would cut off the queued audio
    [sentinel] = [m["mark"]["name"] for m in twilio_msgs(outs) if m["event"] == "mark"]
    assert bridge.on_tick(2.0) == []
    outs = bridge.on_twilio({"event": "mark", "streamSid": SID, "mark": {"name": sentinel}}, 4.0)
    assert outs == [EndCall("voicemail_left", deliberate=True)]


def test_time_cap_says_goodbye_then_ends() -> None:
    bridge, _ = make(time_limit_s=5.0, goodbye_fallback_s=20.0)
    speak(bridge, "resp_1", "item_1", 2, 100, 4.9)
    outs = bridge.on_tick(5.0)
    assert twilio_msgs(outs) == [{"event": "clear", "streamSid": SID}]
    assert [m["type"] for m in openai_msgs(outs)] == ["response.cancel"]
    outs = bridge.on_openai(
        {"type": "response.done", "response": {"id": "resp_1", "status": "cancelled"}}, 5.1
    )
    [goodbye] = openai_msgs(outs)
    assert prompts.TIME_LIMIT_SENTENCE in goodbye["response"]["instructions"]
    # Media from the caller is no longer forwarded, and speech does not interrupt the goodbye.
    assert bridge.on_twilio({"event": "media", "media": {"payload": "AA=="}}, 5.2) == []
    speak(bridge, "resp_2", "item_2", 5, 100, 5.3)
    assert bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 5.4) == []
    outs = bridge.on_openai({"type": "response.done", "response": {"id": "resp_2"}}, 5.5)
    [sentinel] = [m["mark"]["name"] for m in twilio_msgs(outs) if m["event"] == "mark"]
    outs = bridge.on_twilio({"event": "mark", "mark": {"name": sentinel}}, 6.0)
    assert outs == [EndCall("time_limit", deliberate=True)]


def test_time_cap_fallback() -> None:
    bridge, _ = make(time_limit_s=5.0, goodbye_fallback_s=2.0)
    bridge.on_tick(5.0)
    assert bridge.on_tick(6.9) == []
    assert bridge.on_tick(7.0) == [EndCall("time_limit", deliberate=True)]


def test_stop_and_upstream_loss() -> None:
    bridge, _ = make()
    assert bridge.on_twilio({"event": "stop", "streamSid": SID}, 3.0) == [
        EndCall("caller_hung_up", deliberate=True)
    ]
    bridge2, _ = make(reconnect_attempts=0)  # reconnects: tests/relay/call/test_continuity.py
    assert bridge2.on_upstream_closed(2.0) == [EndCall("upstream_lost", deliberate=False)]


def test_transcript_collects_both_sides() -> None:
    bridge, _ = make()
    bridge.on_openai(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "transcript": "I need a gate",
        },
        1.0,
    )
    bridge.on_openai(
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "r",
            "transcript": "Sure, what width?",
        },
        2.0,
    )
    assert bridge.transcript_text() == "caller: I need a gate\nassistant: Sure, what width?"


def transcript_done(bridge: TwilioBridge, response: str, text: str, now: float) -> None:
    event = {"type": "response.output_audio_transcript.done", "response_id": response}
    bridge.on_openai({**event, "transcript": text}, now)


def test_transcript_marks_what_the_caller_interrupted() -> None:
    bridge, _ = make()
    speak(bridge, "resp_1", "item_1", 10, 100, 1.0)  # 1 s of audio, generated at once
    transcript_done(bridge, "resp_1", "Welcome to GateFrames, how can I help?", 1.0)
    bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 1.4)  # 0.4 s heard
    bridge.on_openai(
        {"type": "response.done", "response": {"id": "resp_1", "status": "completed"}}, 1.4
    )
    speak(bridge, "resp_2", "item_2", 5, 100, 3.0)
    transcript_done(bridge, "resp_2", "Sure.", 3.0)
    assert bridge.transcript.lines == [
        ("assistant (interrupted at 0.4 s)", "Welcome to GateFrames, how can I help?"),
        ("assistant", "Sure."),
    ]


def test_cancelled_response_transcript_comes_from_response_done_once() -> None:
    bridge, _ = make()
    speak(bridge, "resp_1", "item_1", 10, 100, 1.0)
    bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 1.25)
    output = [{"type": "message", "content": [{"type": "output_audio", "transcript": "Hello th"}]}]
    done = {"id": "resp_1", "status": "cancelled", "output": output}
    bridge.on_openai({"type": "response.done", "response": done}, 1.3)
    transcript_done(bridge, "resp_1", "Hello th", 1.3)  # a late duplicate adds nothing
    assert bridge.transcript.lines == [("assistant (interrupted at 0.2 s)", "Hello th")]


def test_response_cancelled_before_any_audio_is_not_in_the_transcript() -> None:
    bridge, _ = make()
    bridge.on_openai({"type": "response.created", "response": {"id": "resp_1"}}, 1.0)
    bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 1.1)
    transcript_done(bridge, "resp_1", "never heard", 1.2)
    assert bridge.transcript.lines == []


def test_time_cap_marks_the_response_it_cut_off() -> None:
    bridge, _ = make(time_limit_s=5.0)
    speak(bridge, "resp_1", "item_1", 2, 100, 4.9)
    transcript_done(bridge, "resp_1", "Our swing gates come in", 4.9)
    bridge.on_tick(5.0)
    assert bridge.transcript.lines == [
        ("assistant (cut off by the time limit)", "Our swing gates come in")
    ]


def test_garbage_is_tolerated() -> None:
    """Malformed messages from either side are dropped: nothing is forwarded, nothing ends."""
    bridge, _ = make()
    out = []
    for msg in (
        {},
        {"event": "media"},
        {"event": "media", "media": {"payload": 5}},
        {"event": "mark", "mark": {"name": "nope"}},
        {"event": "weird"},
    ):
        out += bridge.on_twilio(msg, 1.0)
    for ev in (
        {},
        {"type": "response.output_audio.delta"},
        {"type": "error"},
        {"type": "error", "error": {"code": "response_cancel_not_active"}},
    ):
        out += bridge.on_openai(ev, 1.0)
    assert out == []
    # and the call still works: real caller audio is forwarded as before
    media = {"event": "media", "media": {"payload": audio(20), "timestamp": "40"}}
    assert [o for o in bridge.on_twilio(media, 1.1) if "input_audio_buffer.append" in str(o)]


def test_playback_interpolates_between_echoes() -> None:
    p = PlaybackTracker()
    names = [p.audio_sent("i", "r", audio(100), 0.0) for _ in range(3)]
    assert p.items["i"].played_at(0.05) == pytest.approx(50)
    p.echoed(names[0], 0.12)  # echo late: position known to be 100 ms at 0.12
    assert p.items["i"].played_at(0.17) == pytest.approx(150)
    assert p.items["i"].played_at(10.0) == pytest.approx(300)  # never beyond what was sent
    # A chunk sent after the buffer ran dry starts playing when it arrives.
    late = p.audio_sent("i", "r", audio(100), 1.0)
    assert p.items["i"].played_at(1.05) == pytest.approx(350)
    assert late.startswith("a")
    assert b64_decoded_len(audio(100)) == 800


def test_a_start_whose_stream_sid_could_break_the_json_is_refused() -> None:
    """The stream SID is spliced into every message to Twilio: a start whose SID is not a
    SID starts nothing (no session, nothing to Twilio) and counts as bad media."""
    bridge = TwilioBridge(BridgeSettings(model="gpt-realtime-2.1"), now=0.0, call_sid=CALL_SID)
    msg = start_msg(direction="inbound")
    msg["streamSid"] = msg["start"]["streamSid"] = 'MZ1","event":"clear'
    assert bridge.on_twilio(msg, 0.0) == []
    assert bridge.on_upstream_open(0.0) == [] and bridge.bad_media == 1
    assert bridge.stream_sid == "" and bridge.started_at_start is None
