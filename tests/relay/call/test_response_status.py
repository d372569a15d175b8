"""``response.done`` is read for its status: a failed greeting or voicemail message is asked
for once more, then the call apologises; a voicemail that was not spoken is never "left"."""

from __future__ import annotations

import logging

import pytest

from relay.call.bridge import TwilioBridge
from relay.call.outputs import EndCall
from relay.protocol.realtime import ResponseEnd
from tests.relay.call.helpers import SID, make, openai_msgs, speak, twilio_msgs

VOICEMAIL = {"amd": "machine_end_beep", "direction": "outbound"}
CALL_SID = "CA" + "2" * 32


def failed(response_id: str, code: str = "server_error") -> dict:
    """A ``response.done`` in the shape of openai.types.realtime RealtimeResponse."""
    details = {
        "type": "failed",
        "error": {"type": "server_error", "code": code, "message": "The server had an error."},
    }
    response = {
        "id": response_id,
        "object": "realtime.response",
        "status": "failed",
        "status_details": details,
        "output": [],
    }
    return {"type": "response.done", "response": response}


def done(response_id: str, status: str = "completed", reason: str | None = None) -> dict:
    details = None if status == "completed" else {"type": status, "reason": reason}
    response = {"id": response_id, "status": status, "status_details": details, "output": []}
    return {"type": "response.done", "response": response}


def created(bridge: TwilioBridge, response_id: str, now: float) -> None:
    bridge.on_openai({"type": "response.created", "response": {"id": response_id}}, now)


def marks(outs: list) -> list[str]:
    return [m["mark"]["name"] for m in twilio_msgs(outs) if m["event"] == "mark"]


def test_failed_voicemail_is_retried_once_then_spoken() -> None:
    bridge, outs = make(VOICEMAIL)
    assert [m["type"] for m in openai_msgs(outs)][-1] == "response.create"
    created(bridge, "resp_1", 1.0)
    outs = bridge.on_openai(failed("resp_1"), 1.1)
    # No "voicemail played" mark for a message that was never spoken: a new attempt instead.
    assert marks(outs) == [] and bridge.ended is None
    assert openai_msgs(outs) == [{"type": "response.create"}]
    speak(bridge, "resp_2", "item_2", 10, 100, 1.2)
    outs = bridge.on_openai(done("resp_2"), 1.3)
    [sentinel] = marks(outs)
    outs = bridge.on_twilio({"event": "mark", "streamSid": SID, "mark": {"name": sentinel}}, 3.0)
    assert outs == [EndCall("voicemail_left", deliberate=True)]


def test_voicemail_failing_twice_takes_the_apology_path(caplog: pytest.LogCaptureFixture) -> None:
    bridge, _ = make(VOICEMAIL)
    created(bridge, "resp_1", 1.0)
    with caplog.at_level(logging.INFO, logger="relay.call.bridge"):
        bridge.on_openai(failed("resp_1", "rate_limit_exceeded"), 1.1)
        created(bridge, "resp_2", 1.2)
        outs = bridge.on_openai(failed("resp_2"), 1.3)
    assert outs == [EndCall("voicemail_failed", deliberate=False)]
    assert bridge.ended == EndCall("voicemail_failed", deliberate=False)
    # Each failure is logged as an error with the call SID and OpenAI's code.
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [(r.call_sid, r.status, r.reason) for r in errors] == [  # type: ignore[attr-defined]
        (CALL_SID, "failed", "rate_limit_exceeded"),
        (CALL_SID, "failed", "server_error"),
    ]
    # Nothing more is asked for, and a late mark cannot turn it into a voicemail left.
    assert bridge.on_tick(100.0) == []


@pytest.mark.parametrize(
    ("status", "reason"), [("incomplete", "content_filter"), ("cancelled", "client_cancelled")]
)
def test_voicemail_cut_short_by_openai_is_not_a_voicemail_left(status: str, reason: str) -> None:
    bridge, _ = make(VOICEMAIL)
    speak(bridge, "resp_1", "item_1", 5, 100, 1.0)
    outs = bridge.on_openai(done("resp_1", status, reason), 1.1)
    assert marks(outs) == [] and openai_msgs(outs) == [{"type": "response.create"}]
    speak(bridge, "resp_2", "item_2", 5, 100, 1.2)
    outs = bridge.on_openai(done("resp_2", status, reason), 1.3)
    assert outs == [EndCall("voicemail_failed", deliberate=False)]


def test_voicemail_never_finished_by_the_deadline_is_not_reported_as_left() -> None:
    bridge, _ = make(VOICEMAIL, goodbye_fallback_s=20.0)
    speak(bridge, "resp_1", "item_1", 5, 100, 1.0)  # streaming, never done
    assert bridge.on_tick(59.0) == []
    assert bridge.on_tick(61.0) == [EndCall("voicemail_failed", deliberate=False)]


def test_spoken_voicemail_whose_marks_never_return_still_times_out_as_left() -> None:
    bridge, _ = make(VOICEMAIL, goodbye_fallback_s=20.0)
    speak(bridge, "resp_1", "item_1", 5, 100, 1.0)
    bridge.on_openai(done("resp_1"), 1.1)
    assert bridge.on_tick(61.0) == [EndCall("voicemail_timeout", deliberate=True)]


def test_failed_greeting_is_retried_once_then_apologises() -> None:
    bridge, _ = make({"direction": "inbound"})
    created(bridge, "resp_1", 1.0)
    outs = bridge.on_openai(failed("resp_1"), 1.1)
    assert openai_msgs(outs) == [{"type": "response.create"}] and bridge.ended is None
    created(bridge, "resp_2", 1.2)
    outs = bridge.on_openai(failed("resp_2"), 1.3)
    assert outs == [EndCall("greeting_failed", deliberate=False)]


def test_greeting_retried_once_then_the_call_goes_on() -> None:
    bridge, _ = make({"direction": "inbound"})
    created(bridge, "resp_1", 1.0)
    bridge.on_openai(failed("resp_1"), 1.1)
    speak(bridge, "resp_2", "item_2", 3, 100, 1.2)
    assert bridge.on_openai(done("resp_2"), 1.3) == []
    # A later answer failing is logged, not retried: the caller can simply ask again.
    created(bridge, "resp_3", 5.0)
    assert bridge.on_openai(failed("resp_3"), 5.1) == [] and bridge.ended is None


def test_greeting_interrupted_by_the_caller_is_not_retried() -> None:
    bridge, _ = make({"direction": "inbound"})
    speak(bridge, "resp_1", "item_1", 10, 100, 1.0)
    bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 1.3)
    outs = bridge.on_openai(done("resp_1", "cancelled", "turn_detected"), 1.35)
    assert openai_msgs(outs) == [] and bridge.ended is None


def test_failed_goodbye_apologises_instead_of_waiting_in_silence() -> None:
    bridge, _ = make(time_limit_s=5.0, goodbye_fallback_s=20.0)
    speak(bridge, "resp_1", "item_1", 2, 100, 1.0)
    bridge.on_openai(done("resp_1"), 1.1)
    [goodbye] = openai_msgs(bridge.on_tick(5.0))
    assert goodbye["response"]["conversation"] == "none"
    created(bridge, "resp_bye", 5.1)
    outs = bridge.on_openai(failed("resp_bye"), 5.2)
    assert outs == [EndCall("goodbye_failed", deliberate=False)]


def test_response_end_reads_status_details() -> None:
    end = ResponseEnd.of(failed("resp_1", "rate_limit_exceeded")["response"])
    assert (end.status, end.reason, end.message) == (
        "failed",
        "rate_limit_exceeded",
        "The server had an error.",
    )
    cut = ResponseEnd.of(done("r", "incomplete", "max_output_tokens")["response"])
    assert (cut.status, cut.reason) == ("incomplete", "max_output_tokens")
    assert ResponseEnd.of({"id": "r"}).status == ""  # never mistaken for "completed"
