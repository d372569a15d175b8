"""Tool calls through ``responses`` delegation in the GPT-Live simulator, over a real WebSocket
to a real simulator process: the delegation and its Responses events (each parsed by the SDK's
``openai.types.live`` and ``openai.types.responses`` types), every pending call answered before
``response.create``, the reply reflecting the output, and the outputs kept for tests."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

from sandbox.live_sim.audio import PCM24K
from tests.sandbox.live_client import (
    END_CALL,
    TRANSFER,
    connect,
    control,
    inner,
    newest_session,
    recv,
    running_sim,
    send,
    speak,
    start,
    text_of,
    until,
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sim(tmp_path_factory.mktemp("live-tools")) as url:
        yield url


@pytest.fixture
def ws(sim: str) -> Iterator[websocket.WebSocket]:
    control(sim, "/_sandbox/reset")
    conn = connect(sim)
    yield conn
    conn.close()


def backend(**settings: Any) -> dict[str, Any]:
    responses = {"model": "gpt-5", "tools": [END_CALL, TRANSFER], "parallel_tool_calls": False}
    return {"type": "responses", "acknowledgement_delay_ms": 0,
            "responses": {**responses, **settings}}  # fmt: skip


def output(call_id: str, message: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id,
            "output": json.dumps({"message": message})}  # fmt: skip


def calls_made(ws: websocket.WebSocket) -> tuple[dict, list[dict], list[dict]]:
    """(session.delegation.created, the function_call items done, every event read)."""
    created, seen = until(ws, "session.delegation.created")
    _, more = inner(ws, "response.completed")
    seen += more
    done = [e["event"] for e in seen if e["type"] == "response.event"]
    items = [e["item"] for e in done if e["type"] == "response.output_item.done"]
    return created, items, seen


def test_a_caller_asking_for_a_person_gets_transfer_and_the_reply_uses_the_output(
    sim: str, ws: websocket.WebSocket
) -> None:
    start(ws, delegation=backend())
    control(sim, "/_sandbox/caller_says", text="Can you transfer me to a person?")
    speak(ws)
    created, [item], seen = calls_made(ws)
    delegation = created["delegation"]
    assert (delegation["type"], delegation["target"]) == ("delegation", "responses")
    assert delegation["id"].startswith("dlg_") and delegation["response_id"].startswith("resp_")
    events = [e for e in seen if e["type"] == "response.event"]
    assert {e["delegation_id"] for e in events} == {delegation["id"]}
    kinds = [e["event"]["type"] for e in events]
    deltas = kinds.count("response.function_call_arguments.delta")
    assert deltas >= 1
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * deltas,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["event"]["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["event"]["response"]["id"] == delegation["response_id"]
    assert events[-1]["event"]["response"]["output"] == []  # lifecycle snapshots are trimmed
    assert (item["type"], item["status"], item["name"]) == (
        "function_call", "completed", "transfer_to_staff")  # fmt: skip
    assert json.loads(item["arguments"]) == {"reason": "Can you transfer me to a person?"}
    # The model acknowledges the delegation while it waits (acknowledgement_delay_ms 0).
    ack, _ = until(ws, "session.output_transcript.delta")
    assert ack["delta"]

    send(ws, type="response.item.create", item=output(item["call_id"], "Transferring to Sam."))
    send(ws, type="response.create", event_id="evt_go")
    _, seen = inner(ws, "response.completed")
    texts = [e["event"] for e in seen if e["type"] == "response.event"]
    said = "".join(e["delta"] for e in texts if e["type"] == "response.output_text.delta")
    assert said == "Okay: Transferring to Sam."
    spoken = []
    while "".join(spoken) != said:
        event = recv(ws)
        if event["type"] == "session.output_transcript.delta":
            spoken.append(event["delta"])
    record = newest_session(sim)
    assert [t["reason"] for t in record["turns"]][-1] == "delegation"
    [kept] = control(sim, "/_sandbox/tool_outputs")[1]["tool_outputs"]
    assert kept["session_id"] == record["id"] and kept["call_id"] == item["call_id"]
    assert (kept["name"], json.loads(kept["output"])) == (
        "transfer_to_staff", {"message": "Transferring to Sam."})  # fmt: skip


def test_a_scripted_call_uses_the_scripted_arguments(sim: str, ws: websocket.WebSocket) -> None:
    start(ws, delegation=backend())
    status, script = control(sim, "/_sandbox/call_tool", name="end_call",
                             arguments=json.dumps({"reason": "caller is done"}))  # fmt: skip
    assert status == 200 and script["tool_calls"] == [
        [{"name": "end_call", "arguments": {"reason": "caller is done"}}]
    ]
    speak(ws)
    _, [item], _ = calls_made(ws)
    assert item["name"] == "end_call"
    assert json.loads(item["arguments"]) == {"reason": "caller is done"}
    assert newest_session(sim)["tool_calls"][0]["call_id"] == item["call_id"]


def test_every_pending_call_needs_an_output_before_response_create(
    sim: str, ws: websocket.WebSocket
) -> None:
    start(ws, delegation=backend(parallel_tool_calls=True))
    batch = [{"name": "transfer_to_staff", "arguments": {"reason": "billing"}},
             {"name": "end_call", "arguments": {"reason": "after transfer"}}]  # fmt: skip
    assert control(sim, "/_sandbox/call_tools", calls=json.dumps(batch))[0] == 200
    speak(ws)
    _, items, _ = calls_made(ws)
    assert [i["name"] for i in items] == ["transfer_to_staff", "end_call"]
    first, second = (i["call_id"] for i in items)

    send(ws, type="response.create", event_id="evt_none")  # no output yet
    error, _ = until(ws, "error")
    assert error["error"]["code"] == "missing_tool_output" and first in error["error"]["message"]
    assert error["error"]["client_event_id"] == "evt_none"
    send(ws, type="response.item.create", item=output(first, "Transferring."))
    send(ws, type="response.create", event_id="evt_partial")  # a partial batch
    error, seen = until(ws, "error")
    assert error["error"]["code"] == "missing_tool_output" and second in error["error"]["message"]
    assert not [e for e in seen if e["type"] == "response.event"]  # the backend did not go on
    send(ws, type="response.item.create", event_id="evt_dup", item=output(first, "Again."))
    error, _ = until(ws, "error")
    assert (error["error"]["code"], error["error"]["param"]) == ("invalid_value", "item.call_id")
    send(ws, type="response.item.create", item=output("call_nope", "Who?"))
    assert until(ws, "error")[0]["error"]["param"] == "item.call_id"

    send(ws, type="response.item.create", item=output(second, "Bye."))
    send(ws, type="response.create")
    _, seen = inner(ws, "response.completed")
    said = "".join(e["event"]["delta"] for e in seen if e["type"] == "response.event"
                   and e["event"]["type"] == "response.output_text.delta")  # fmt: skip
    assert said == "Okay: Transferring. Okay: Bye."
    outputs = control(sim, "/_sandbox/tool_outputs")[1]["tool_outputs"]
    assert [(o["call_id"], json.loads(o["output"])["message"]) for o in outputs] == [
        (first, "Transferring."), (second, "Bye.")]  # fmt: skip
    send(ws, type="response.item.create", item=output(first, "Late."))  # nothing pending now
    assert until(ws, "error")[0]["error"]["param"] == "item.call_id"


def test_parallel_tool_calls_false_makes_one_call_and_unoffered_tools_none(
    sim: str, ws: websocket.WebSocket
) -> None:
    start(ws, delegation=backend())
    batch = [{"name": "end_call"}, {"name": "transfer_to_staff"}]
    control(sim, "/_sandbox/call_tools", calls=json.dumps(batch))
    speak(ws)
    _, items, _ = calls_made(ws)
    assert [i["name"] for i in items] == ["end_call"]
    # Unscripted arguments come from the tool's schema and what the caller said.
    assert json.loads(items[0]["arguments"])["reason"].startswith("(caller spoke 0.")
    control(sim, "/_sandbox/call_tool", name="send_text")  # not offered
    send(ws, type="response.item.create", item=output(items[0]["call_id"], "Ending."))
    send(ws, type="response.create")
    inner(ws, "response.completed")
    speak(ws)
    _, seen = until(ws, "session.output_transcript.delta")
    assert not [e for e in seen if e["type"] == "session.delegation.created"]
    refused = newest_session(sim)["tool_calls_refused"]
    assert refused == [
        {"name": "transfer_to_staff", "why": "parallel_tool_calls is false"},
        {"name": "send_text", "why": "not offered by the session"},
    ]


def test_without_responses_delegation_response_events_are_refused(
    sim: str, ws: websocket.WebSocket
) -> None:
    start(ws, delegation={"type": "client"})
    send(ws, type="response.create", event_id="evt_rc")
    error = recv(ws)["error"]
    assert error["code"] == "responses_delegation_required"
    assert error["client_event_id"] == "evt_rc"
    send(ws, type="response.item.create", item=output("call_1", "x"))
    assert recv(ws)["error"]["code"] == "responses_delegation_required"
    control(sim, "/_sandbox/caller_says", text="transfer me to a person")
    speak(ws)
    _, seen = until(ws, "session.output_transcript.delta")
    assert not [e for e in seen if e["type"] == "session.delegation.created"]


def test_thinking_cancels_a_pending_acknowledgement(sim: str, ws: websocket.WebSocket) -> None:
    delegation = backend()
    delegation["acknowledgement_delay_ms"] = 4000  # 200 ms at the simulator's 20x
    start(ws, delegation=delegation)
    control(sim, "/_sandbox/call_tool", name="end_call", arguments='{"reason": "done"}')
    speak(ws)
    _, [item], _ = calls_made(ws)
    send(ws, type="session.thinking.append", content="Ending the call.", delegation_id=None)
    until(ws, "session.thinking.appended")
    ws.settimeout(0.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        while True:
            assert recv(ws)["type"] not in ("session.output_audio.delta",)
    ws.settimeout(10)
    assert "acknowledgement" not in [t["reason"] for t in newest_session(sim)["turns"]]
    send(ws, type="response.item.create", item=output(item["call_id"], "Goodbye!"))
    send(ws, type="response.create")
    _, seen = until(ws, "session.output_transcript.delta")
    assert text_of(seen, "session.output_transcript.delta")


def test_a_tool_output_with_bad_shape_is_refused_by_the_schema(
    sim: str, ws: websocket.WebSocket
) -> None:
    start(ws, delegation=backend())
    send(ws, type="response.item.create", item={"type": "function_call_output", "output": "x"})
    error = recv(ws)["error"]
    assert (error["code"], error["param"]) == ("missing_required_parameter", "item.call_id")
    item = {"type": "function_call_output", "call_id": "c", "output": "x", "colour": 1}
    send(ws, type="response.item.create", item=item)
    error = recv(ws)["error"]
    assert (error["code"], error["param"]) == ("unknown_parameter", "item.colour")
    send(ws, type="response.create", response={})
    error = recv(ws)["error"]
    assert (error["code"], error["param"]) == ("unknown_parameter", "response")


def test_an_answer_due_while_a_fixture_plays_is_spoken_after_it(
    sim: str, ws: websocket.WebSocket
) -> None:
    delegation = backend()
    delegation["acknowledgement_delay_ms"] = 60000  # no acknowledgement in this test
    start(ws, delegation=delegation)
    control(sim, "/_sandbox/call_tool", name="end_call", arguments='{"reason": "voicemail"}')
    speak(ws)
    _, [item], _ = calls_made(ws)
    clip = PCM24K.tone(1000, 440)
    send(ws, type="session.output_audio.fixture.play", audio=base64.b64encode(clip).decode())
    until(ws, "session.output_audio.fixture.playing")
    send(ws, type="response.item.create", item=output(item["call_id"], "Message left."))
    send(ws, type="response.create")
    _, seen = until(ws, "session.output_audio.fixture.played")
    assert not [e for e in seen if e["type"] == "session.output_transcript.delta"]
    until(ws, "session.output_transcript.delta")
    fixture, answer = newest_session(sim)["turns"]
    assert (fixture["reason"], fixture["status"]) == ("fixture", "done")
    assert (answer["reason"], answer["text"]) == ("delegation", "Okay: Message left.")
