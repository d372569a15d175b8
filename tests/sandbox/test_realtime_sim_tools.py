"""Function calling in the Realtime simulator (GA protocol), over a real WebSocket: scripted
caller speech or a scripted tool call, the documented event sequence (every event parsed by
the SDK's GA types), function_call_output checks and a reply that reflects the output."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import websocket

from sandbox.realtime_sim.audio import PCMU
from tests.sandbox.realtime_client import SERVER_EVENT, connect, control, running_sim, send, until

TRANSFER = {
    "type": "function",
    "name": "transfer_to_staff",
    "description": "Transfer the caller to a staff member.",
    "parameters": {
        "type": "object",
        "properties": {"reason": {"type": "string"}},
        "required": ["reason"],
    },
}
END_CALL = {
    "type": "function",
    "name": "end_call",
    "description": "Hang up.",
    "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sim(tmp_path_factory.mktemp("rt-tools")) as url:
        yield url


@pytest.fixture
def ws(sim: str) -> Iterator[websocket.WebSocket]:
    control(sim, "/_sandbox/reset")
    conn = connect(sim)
    yield conn
    conn.close()


def open_session(ws: websocket.WebSocket, tools: list[dict[str, Any]], **extra: Any) -> None:
    audio = {"input": {"format": {"type": "audio/pcmu"}, "turn_detection": None,
                       "transcription": {"model": "gpt-live-transcribe"}}}  # fmt: skip
    session = {"type": "realtime", "audio": audio, "tools": tools, **extra}
    send(ws, type="session.update", session=session)
    until(ws, "session.updated")


def caller_turn(ws: websocket.WebSocket) -> None:
    """Half a second of speech, committed by hand (no VAD), then a response is asked for."""
    send(ws, type="input_audio_buffer.append", audio=base64.b64encode(PCMU.tone(500, 300)).decode())
    send(ws, type="input_audio_buffer.commit")
    send(ws, type="response.create")


def response(ws: websocket.WebSocket) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    done, seen = until(ws, "response.done")
    for event in seen:
        SERVER_EVENT.validate_python(event)  # the SDK's GA shapes, strictly
    start = next(i for i, e in enumerate(seen) if e["type"] == "response.created")
    return done, seen[start:]


def session_record(sim: str) -> dict[str, Any]:
    return control(sim, "/_sandbox/sessions")["sessions"][-1]


def test_caller_asking_for_a_person_calls_transfer_and_the_reply_uses_the_output(
    sim: str, ws: websocket.WebSocket
) -> None:
    open_session(ws, [TRANSFER, END_CALL])
    control(sim, "/_sandbox/caller_says?text=" + quote("Can you transfer me to a person?"))
    caller_turn(ws)
    done, seen = response(ws)
    kinds = [e["type"] for e in seen]
    deltas = kinds.count("response.function_call_arguments.delta")
    assert deltas >= 1
    assert kinds == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        *["response.function_call_arguments.delta"] * deltas,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    added = seen[1]["item"]
    assert (added["type"], added["status"], added["name"]) == (
        "function_call", "in_progress", "transfer_to_staff")  # fmt: skip
    args_done = seen[-4]
    call_id = args_done["call_id"]
    assert args_done["name"] == "transfer_to_staff" and args_done["item_id"] == added["id"]
    assert args_done["response_id"] == done["response"]["id"] and args_done["output_index"] == 0
    assert json.loads(args_done["arguments"]) == {"reason": "Can you transfer me to a person?"}
    assert (
        "".join(e["delta"] for e in seen if e["type"].endswith("arguments.delta"))
        == (args_done["arguments"])
    )
    [item] = done["response"]["output"]
    assert (item["type"], item["call_id"], item["status"]) == (
        "function_call",
        call_id,
        "completed",
    )
    assert done["response"]["status"] == "completed"

    output = json.dumps({"message": "Transferring you to Sam now."})
    item_out = {"type": "function_call_output", "call_id": call_id, "output": output}
    send(ws, type="conversation.item.create", item=item_out)
    until(ws, "conversation.item.added")
    send(ws, type="response.create")
    reply, seen = response(ws)
    [message] = reply["response"]["output"]
    assert message["type"] == "message"
    assert "Transferring you to Sam now." in message["content"][0]["transcript"]
    record = session_record(sim)
    assert [c["name"] for c in record["tool_calls"]] == ["transfer_to_staff"]
    assert record["tool_outputs"] == [
        {"call_id": call_id, "name": "transfer_to_staff", "output": output}
    ]


def test_scripted_tool_call_and_a_tool_the_session_does_not_offer(
    sim: str, ws: websocket.WebSocket
) -> None:
    open_session(ws, [TRANSFER])
    control(sim, "/_sandbox/call_tool?name=end_call&arguments=" + quote('{"reason": "bye"}'))
    caller_turn(ws)
    done, _ = response(ws)
    [item] = done["response"]["output"]
    assert item["type"] == "message"  # end_call was not offered: the model just speaks
    assert session_record(sim)["tool_calls_refused"] == [
        {"name": "end_call", "why": "not offered by the session"}
    ]
    open_session(ws, [TRANSFER, END_CALL])
    control(sim, "/_sandbox/call_tool?name=end_call&arguments=" + quote('{"reason": "bye"}'))
    send(ws, type="response.create")
    done, _ = response(ws)
    [call] = done["response"]["output"]
    assert (call["name"], json.loads(call["arguments"])) == ("end_call", {"reason": "bye"})


def test_function_call_output_is_checked(sim: str, ws: websocket.WebSocket) -> None:
    open_session(ws, [END_CALL])
    control(sim, "/_sandbox/caller_says?text=goodbye")
    caller_turn(ws)
    done, _ = response(ws)
    [call] = done["response"]["output"]
    assert call["name"] == "end_call"
    bad = {"type": "function_call_output", "call_id": "call_unknown", "output": "ok"}
    send(ws, type="conversation.item.create", item=bad, event_id="evt_1")
    error, _ = until(ws, "error")
    assert error["error"]["code"] == "invalid_value" and error["error"]["param"] == "item.call_id"
    assert error["error"]["event_id"] == "evt_1"
    not_text = {"type": "function_call_output", "call_id": call["call_id"], "output": 42}
    send(ws, type="conversation.item.create", item=not_text, event_id="evt_2")
    error, _ = until(ws, "error")
    assert error["error"]["event_id"] == "evt_2" and "output" in error["error"]["param"]
    assert "tool_outputs" not in session_record(sim)


def test_tool_choice_none_calls_no_tool(sim: str, ws: websocket.WebSocket) -> None:
    open_session(ws, [END_CALL], tool_choice="none")
    control(sim, "/_sandbox/caller_says?text=" + quote("ok bye, hang up"))
    caller_turn(ws)
    done, _ = response(ws)
    [item] = done["response"]["output"]
    assert item["type"] == "message"
    assert session_record(sim)["tool_calls_refused"] == [
        {"name": "end_call", "why": "tool_choice none"}
    ]
