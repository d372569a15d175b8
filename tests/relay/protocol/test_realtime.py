"""relay.protocol.realtime: every client event the relay builds is a GA client event as the
openai SDK types it (validated with ``openai.types.realtime``), and the server-event readers
take what the SDK's server events carry."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from openai.types.realtime import RealtimeClientEvent
from pydantic import Field, TypeAdapter

from relay.protocol import realtime

CLIENT_EVENT: TypeAdapter[Any] = TypeAdapter(
    Annotated[RealtimeClientEvent, Field(discriminator="type")]
)


def phone(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "model": "gpt-realtime-2.1",
        "instructions": "Be brief.",
        "voice": "marin",
        "transcription": {"model": "gpt-4o-mini-transcribe"},
        "turn_detection": {"type": "server_vad", "create_response": True},
    }
    return realtime.phone_session(**{**args, **kw})


@pytest.mark.parametrize(
    "event",
    [
        realtime.session_update(phone()),
        realtime.session_update(phone(turn_detection=None), event_id="evt_1"),
        realtime.session_update(
            phone(tools=[{"type": "function", "name": "end_call", "parameters": {}}])
        ),
        realtime.response_create(),
        realtime.response_create("Say goodbye.", conversation="none", tool_choice="none"),
        realtime.response_cancel(),
        realtime.truncate("item_1", 1200),
        realtime.message("user", "Greet the caller."),
        realtime.message("assistant", "Hello, GateFrames."),
        realtime.message("system", "The transfer did not go through."),
        realtime.function_call_output("call_1", "Sent."),
    ],
    ids=lambda e: e["type"],
)
def test_every_client_event_is_a_ga_client_event(event: dict[str, Any]) -> None:
    parsed = CLIENT_EVENT.validate_python(event)
    assert parsed.model_dump(exclude_unset=True) == event


def test_phone_session_is_mu_law_both_ways_and_audio_only() -> None:
    session = phone()
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert session["output_modalities"] == ["audio"]
    assert "tools" not in session  # no tools: no tool_choice either
    assert phone(tools=[{"type": "function", "name": "x"}])["tool_choice"] == "auto"


def test_the_audio_splice_is_the_event_json_would_give() -> None:
    text = realtime.input_audio_append("f39/fw==")
    assert json.loads(text) == {"type": "input_audio_buffer.append", "audio": "f39/fw=="}
    CLIENT_EVENT.validate_json(text)


def test_response_end_reads_status_details_of_each_kind() -> None:
    failed = realtime.ResponseEnd.of(
        {
            "id": "resp_1",
            "status": "failed",
            "status_details": {
                "type": "failed",
                "error": {"type": "server_error", "code": "rate_limit_exceeded", "message": "m"},
            },
        }
    )
    assert (failed.status, failed.reason, failed.message) == ("failed", "rate_limit_exceeded", "m")
    cut = realtime.ResponseEnd.of(
        {"id": "r", "status": "cancelled", "status_details": {"type": "cancelled", "reason": "x"}}
    )
    assert (cut.status, cut.reason) == ("cancelled", "x")
    assert realtime.ResponseEnd.of({"id": "r"}).status == ""  # never taken for completed


def test_transcript_of_joins_the_output_items_transcripts() -> None:
    response = {
        "output": [
            {"type": "message", "content": [{"type": "output_audio", "transcript": "Hello."}]},
            "junk",
            {"type": "message", "content": [{"type": "output_audio", "transcript": "Bye."}]},
        ]
    }
    assert realtime.transcript_of(response) == "Hello. Bye."
