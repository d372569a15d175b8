"""The Realtime simulator checks the whole ``session.update`` and every client event against
the openai SDK's GA types, and refuses what the real service refuses, in its error shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relay.call.greeting import session_update
from relay.call.settings import BridgeSettings
from tests.sandbox.realtime_client import SERVER_EVENT, connect, running_sim, send, until


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sim(tmp_path_factory.mktemp("rt")) as url:
        yield url


def test_a_refused_session_update_is_a_ga_error_and_changes_nothing(sim: str):
    ws = connect(sim)
    send(ws, type="session.update", session={"type": "realtime", "instructions": "Before."})
    until(ws, "session.updated")
    bad = {
        "type": "realtime",
        "instructions": "After.",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "eagerness": "low"}}},
    }
    send(ws, type="session.update", event_id="evt_client_1", session=bad)
    error, seen = until(ws, "error")
    assert [e["type"] for e in seen] == ["error"]  # no session.updated
    assert error["event_id"].startswith("event_")
    param = "session.audio.input.turn_detection.eagerness"  # semantic_vad only
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "unknown_parameter",
        "message": f"Unknown parameter: '{param}'.",
        "param": param,
        "event_id": "evt_client_1",
    }
    SERVER_EVENT.validate_python(error)
    send(ws, type="session.update", session={"type": "realtime", "output_modalities": ["text"]})
    updated = until(ws, "session.updated")[0]["session"]
    assert updated["instructions"] == "Before." and updated["output_modalities"] == ["text"]
    assert updated["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    ws.close()


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"output_modalities": ["text", "audio"]}, "invalid_value", "session.output_modalities"),
        ({"output_modalities": ["video"]}, "invalid_value", "session.output_modalities[0]"),
        (
            {"audio": {"input": {"format": {"type": "g711_ulaw"}}}},
            "invalid_value",
            "session.audio.input.format.type",
        ),
        (
            {"audio": {"input": {"format": {"type": "audio/pcmu", "rate": 8000}}}},
            "unknown_parameter",
            "session.audio.input.format.rate",
        ),
        ({"audio": {"output": {"voice": "bob"}}}, "invalid_value", "session.audio.output.voice"),
        (
            {"audio": {"output": {"speed": 3}}},
            "decimal_above_max_value",
            "session.audio.output.speed",
        ),
        ({"max_output_tokens": 0}, "integer_below_min_value", "session.max_output_tokens"),
        ({"instructions": 5}, "invalid_type", "session.instructions"),
        (
            {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": "0.5"}}}},
            "invalid_type",
            "session.audio.input.turn_detection.threshold",
        ),
        ({"reasoning": {"effort": "huge"}}, "invalid_value", "session.reasoning.effort"),
        (
            {"tools": [{"type": "function", "name": "f", "parameters": {}, "strict": True}]},
            "unknown_parameter",
            "session.tools[0].strict",
        ),
        ({"temperature": 0.8}, "unknown_parameter", "session.temperature"),
        ({"type": None}, "invalid_type", "session.type"),
        ({"type": "transcription"}, "invalid_value", "session.type"),
    ],
)
def test_session_update_is_checked_in_depth(sim: str, session: dict, code: str, param: str):
    ws = connect(sim)
    send(ws, type="session.update", session={"type": "realtime", **session})
    error, seen = until(ws, "error")
    assert len(seen) == 1
    assert (error["error"]["code"], error["error"]["param"]) == (code, param), error
    assert error["error"]["type"] == "invalid_request_error"
    ws.close()


def test_session_without_type_is_missing_a_required_parameter(sim: str):
    ws = connect(sim)
    send(ws, type="session.update", session={"instructions": "Hi."})
    error = until(ws, "error")[0]["error"]
    assert error["code"] == "missing_required_parameter" and error["param"] == "session.type"
    assert error["message"] == "Missing required parameter: 'session.type'."
    ws.close()


def test_full_ga_sessions_are_accepted(sim: str):
    ws = connect(sim)
    phone = session_update(BridgeSettings(model="gpt-realtime-2.1"), voicemail=False)
    send(ws, **phone)
    assert until(ws, "session.updated")[0]["session"]["audio"]["output"]["voice"] == "ash"
    reasoning = {"type": "realtime", "parallel_tool_calls": True, "reasoning": {"effort": "low"}}
    send(ws, type="session.update", session=reasoning)
    assert until(ws, "session.updated")[0]["session"]["parallel_tool_calls"] is True
    ws.close()


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ({"type": "response.cancel", "foo": 1}, "unknown_parameter", "foo"),
        (
            {
                "type": "conversation.item.truncate",
                "item_id": "i",
                "content_index": 0,
                "audio_end_ms": -11,
            },
            "integer_below_min_value",
            "audio_end_ms",
        ),
        (
            {"type": "conversation.item.truncate", "item_id": "i", "audio_end_ms": 5},
            "missing_required_parameter",
            "content_index",
        ),
        (
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_txt", "text": "hi"}],
                },
            },
            "invalid_value",
            "item.content[0].type",
        ),
        (
            {"type": "response.create", "response": {"conversation": "mine"}},
            "invalid_value",
            "response.conversation",
        ),
        (
            {"type": "response.create", "response": {"output_modalities": ["text", "audio"]}},
            "invalid_value",
            "response.output_modalities",
        ),
        ({"type": "input_audio_buffer.append"}, "missing_required_parameter", "audio"),
    ],
)
def test_client_events_are_checked_against_the_ga_union(
    sim: str, event: dict, code: str, param: str
):
    ws = connect(sim)
    send(ws, **event)
    error = until(ws, "error")[0]["error"]
    assert (error["code"], error["param"]) == (code, param), error
    ws.close()


def test_unknown_event_type_lists_the_supported_ones(sim: str):
    ws = connect(sim)
    send(ws, type="response.audio.delta", event_id="e1")
    error = until(ws, "error")[0]["error"]
    assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", "type", "e1")
    assert error["message"].startswith(
        "Invalid value: 'response.audio.delta'. Supported values are: 'conversation.item.create',"
    )
    assert "and 'session.update'." in error["message"]
    ws.close()
