"""The assistant's tools inside the call bridge, without a network: function calls in,
``function_call_output`` + ``response.create`` out, hang-ups and transfers only once the
line that announces them has played (relay/call_tool_flow.py)."""

from __future__ import annotations

import json

import orjson
import pytest

from common import prompts
from relay.call.bridge import TwilioBridge
from relay.call.outputs import EndCall, RunTool
from relay.call.settings import BridgeSettings
from relay.call.tools import SendText, TakeMessage, ToolSettings, Transfer
from sandbox.realtime_sim import schema
from tests.relay.call.helpers import (
    CALL_SID,
    SID,
    openai_msgs,
    speak,
    start_msg,
    twilio_msgs,
)

CALLER = "+14155550100"
STAFF = "+14155550177"
BOT = "+14082605145"


def make(params: dict | None = None) -> tuple[TwilioBridge, list]:
    tools = ToolSettings(transfer_number=STAFF, bot_number=BOT)
    bridge = TwilioBridge(
        BridgeSettings(model="gpt-realtime-2.1", tools=tools, goodbye_fallback_s=20.0),
        now=0.0,
        call_sid=CALL_SID,
    )
    bridge.on_twilio(start_msg(**(params or {"direction": "inbound", "from": CALLER})), 0.0)
    return bridge, bridge.on_upstream_open(0.0)


def greeted() -> TwilioBridge:
    bridge, _ = make()
    speak(bridge, "resp_greet", "item_greet", 2, 100, 0.1)
    bridge.on_openai(done_event("resp_greet"), 0.2)
    return bridge


def call_event(name: str, arguments: str, call_id: str, rid: str) -> dict:
    return {
        "type": "response.function_call_arguments.done",
        "response_id": rid,
        "item_id": "item_" + call_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def done_event(rid: str, *calls: tuple[str, str, str], status: str = "completed") -> dict:
    output = [
        {
            "type": "function_call",
            "status": "completed",
            "name": n,
            "arguments": a,
            "call_id": c,
        }
        for n, a, c in calls
    ]
    return {"type": "response.done", "response": {"id": rid, "status": status, "output": output}}


def tool_turn(bridge: TwilioBridge, name: str, arguments: str, call_id: str, rid: str, t: float):
    """A response that calls one tool: created, arguments done, response.done (the call again)."""
    outs = bridge.on_openai({"type": "response.created", "response": {"id": rid}}, t)
    during = bridge.on_openai(call_event(name, arguments, call_id, rid), t)
    after = bridge.on_openai(done_event(rid, (name, arguments, call_id)), t + 0.01)
    return outs + during, after


def mark_names(outs: list) -> list[str]:
    return [m["mark"]["name"] for m in twilio_msgs(outs) if m["event"] == "mark"]


def echo(bridge: TwilioBridge, name: str, t: float) -> list:
    return bridge.on_twilio({"event": "mark", "streamSid": SID, "mark": {"name": name}}, t)


def test_a_live_call_offers_the_tools_in_a_session_the_ga_schema_accepts() -> None:
    _, outs = make()
    update = openai_msgs(outs)[0]
    session = update["session"]
    names = [t["name"] for t in session["tools"]]
    assert names == ["end_call", "transfer_to_staff", "send_text", "take_message"]
    assert session["tool_choice"] == "auto"
    assert session["instructions"].endswith(prompts.TOOL_INSTRUCTIONS)
    raw = orjson.dumps(update)
    assert schema.check(raw, orjson.loads(raw)) is None


def test_a_voicemail_session_has_no_tools() -> None:
    bridge, outs = make({"direction": "outbound", "amd": "machine_end_beep", "to": CALLER})
    assert "tools" not in openai_msgs(outs)[0]["session"] and bridge.tools is None


def test_response_create_waits_for_the_active_response_to_end() -> None:
    bridge = greeted()
    during, after = tool_turn(bridge, "end_call", "{}", "call_1", "resp_t", 1.0)
    sent = openai_msgs(during)
    # The output goes in at once; a response.create now would be refused by the server.
    assert [m["type"] for m in sent] == ["conversation.item.create"]
    assert sent[0]["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": prompts.TOOL_END_CALL_OUTPUT,
    }
    # response.done repeats the call: answered once, then the reply is asked for.
    assert [m["type"] for m in openai_msgs(after)] == ["response.create"]


def test_hang_up_only_after_the_goodbyes_mark_echoes() -> None:
    bridge = greeted()
    tool_turn(bridge, "end_call", "{}", "call_1", "resp_t", 1.0)
    outs = speak(bridge, "resp_bye", "item_bye", 5, 100, 1.1)  # the goodbye, 500 ms
    # Caller audio is not forwarded while the goodbye plays: nothing can cut it off.
    media = {"event": "media", "media": {"payload": "f/9/fw=="}}
    assert bridge.on_twilio(media, 1.2) == []
    assert bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 1.2) == []
    done = bridge.on_openai(done_event("resp_bye"), 1.2)
    [sentinel] = mark_names(done)
    for name in mark_names(outs):
        assert echo(bridge, name, 1.3) == []  # audio played, the call still up
    assert bridge.ended is None
    assert echo(bridge, sentinel, 1.7) == [EndCall("assistant_hung_up", deliberate=True)]
    assert ("tool", "end_call() -> ok") in bridge.transcript.lines


def test_hang_up_fallback_when_the_echo_never_comes() -> None:
    bridge = greeted()
    tool_turn(bridge, "end_call", "{}", "call_1", "resp_t", 1.0)
    assert bridge.on_tick(10.0) == []
    assert bridge.on_tick(21.5) == [EndCall("assistant_hung_up", deliberate=True)]


def test_transfer_runs_only_after_the_connecting_line_played() -> None:
    bridge = greeted()
    _, after = tool_turn(bridge, "transfer_to_staff", '{"reason":"gate stuck"}', "c2", "r_t", 1.0)
    assert [m["type"] for m in openai_msgs(after)] == ["response.create"]
    speak(bridge, "resp_conn", "item_conn", 3, 100, 1.1)
    done = bridge.on_openai(done_event("resp_conn"), 1.2)
    assert not [o for o in done if isinstance(o, RunTool)]  # not yet: still playing
    [sentinel] = mark_names(done)
    [run] = [o for o in echo(bridge, sentinel, 1.5) if isinstance(o, RunTool)]
    assert run.outcome.action == Transfer("gate stuck")
    assert bridge.on_tool_result(run.outcome, "redirected", 1.6) == []
    # Twilio stops the stream once the call moved to /twilio/voice/transfer.
    assert bridge.on_twilio({"event": "stop"}, 1.8) == [EndCall("transferred", deliberate=True)]
    assert bridge.transfers == [{"to": STAFF, "status": "redirected"}]


def test_a_failed_transfer_gives_the_call_back_to_the_assistant() -> None:
    bridge = greeted()
    tool_turn(bridge, "transfer_to_staff", '{"reason":"gate stuck"}', "c2", "r_t", 1.0)
    speak(bridge, "resp_conn", "item_conn", 1, 100, 1.1)
    [sentinel] = mark_names(bridge.on_openai(done_event("resp_conn"), 1.2))
    [run] = [o for o in echo(bridge, sentinel, 1.4) if isinstance(o, RunTool)]
    msgs = openai_msgs(bridge.on_tool_result(run.outcome, "failed", 1.5))
    assert [m["type"] for m in msgs] == ["conversation.item.create", "response.create"]
    assert msgs[0]["item"]["role"] == "system"
    assert msgs[0]["item"]["content"][0]["text"] == prompts.TOOL_TRANSFER_FAILED_NOTE
    # Caller audio flows again: the call is the assistant's.
    media = {"event": "media", "media": {"payload": "f/9/fw=="}}
    assert len(bridge.on_twilio(media, 1.6)) == 1 and bridge.ended is None


def test_bad_arguments_get_an_output_saying_what_was_wrong_and_the_call_goes_on() -> None:
    bridge = greeted()
    during, after = tool_turn(bridge, "send_text", '{"message": 5}', "c3", "r_bad", 1.0)
    [output] = openai_msgs(during)
    text = output["item"]["output"]
    assert "field 'message' must be a string" in text and "send_text" in text
    assert [m["type"] for m in openai_msgs(after)] == ["response.create"]
    assert not [o for o in during + after if isinstance(o, RunTool | EndCall)]
    media = {"event": "media", "media": {"payload": "f/9/fw=="}}
    assert len(bridge.on_twilio(media, 1.1)) == 1  # still talking
    assert ("tool", "send_text() -> invalid") in bridge.transcript.lines


def test_send_text_is_performed_then_answered_once_no_response_is_active() -> None:
    bridge = greeted()
    during, after = tool_turn(bridge, "send_text", '{"message":"the link"}', "c4", "r_s", 1.0)
    [run] = [o for o in during if isinstance(o, RunTool)]
    assert run.outcome.action == SendText(CALLER, prompts.with_identity("the link"))
    assert openai_msgs(during + after) == []  # nothing for the model until it ran
    # The caller spoke meanwhile: a response is active when the result comes back.
    bridge.on_openai({"type": "response.created", "response": {"id": "r_vad"}}, 1.2)
    msgs = openai_msgs(bridge.on_tool_result(run.outcome, "sent", 1.3))
    assert [m["type"] for m in msgs] == ["conversation.item.create"]
    assert msgs[0]["item"]["output"].startswith("Sent.")
    assert [m["type"] for m in openai_msgs(bridge.on_openai(done_event("r_vad"), 1.4))] == [
        "response.create"
    ]
    assert bridge.tool_calls_record() == [
        {"name": "send_text", "arguments": {"message": "the link"}, "result": "sent"}
    ]


def test_a_result_after_response_create_waits_for_that_response_to_end() -> None:
    bridge = greeted()
    message = json.dumps({"name": "Ann", "callback_number": "4155550111", "message": "call"})
    calls = (("take_message", message, "c5"), ("send_text", '{"message":"the link"}', "c6"))
    bridge.on_openai({"type": "response.created", "response": {"id": "r_m"}}, 1.0)
    runs = [o for o in bridge.on_openai(done_event("r_m", *calls), 1.0) if isinstance(o, RunTool)]
    assert [type(r.outcome.action) for r in runs] == [TakeMessage, SendText]
    first = openai_msgs(bridge.on_tool_result(runs[0].outcome, "stored", 1.1))
    assert [m["type"] for m in first] == ["conversation.item.create", "response.create"]
    # The server already started that response when this output arrives: it does not see
    # it, and a second response.create before it ends would be refused.
    second = openai_msgs(bridge.on_tool_result(runs[1].outcome, "sent", 1.2))
    assert [m["type"] for m in second] == ["conversation.item.create"]
    bridge.on_openai({"type": "response.created", "response": {"id": "r_reply"}}, 1.3)
    again = openai_msgs(bridge.on_openai(done_event("r_reply"), 1.4))
    assert [m["type"] for m in again] == ["response.create"]


@pytest.mark.parametrize("event", ["response.function_call_arguments.done", "response.done"])
def test_a_tool_call_seen_twice_is_answered_once(event: str) -> None:
    bridge = greeted()
    tool_turn(bridge, "end_call", "{}", "c7", "r_x", 1.0)
    again = (
        call_event("end_call", "{}", "c7", "r_x")
        if event.startswith("response.function")
        else done_event("r_x", ("end_call", "{}", "c7"))
    )
    outs = bridge.on_openai(again, 1.5)
    assert [m for m in openai_msgs(outs) if m["type"] == "conversation.item.create"] == []


# ==== one mark per ~100 ms of audio (#12) ======================================================
def test_small_deltas_get_one_mark_per_100_ms_and_the_item_end_its_own() -> None:
    from tests.relay.call.helpers import make as make_plain

    bridge, _ = make_plain()
    outs = speak(bridge, "resp_1", "item_1", 13, 20, 1.0)  # 260 ms in 20 ms deltas
    kinds = [m["event"] for m in twilio_msgs(outs)]
    assert kinds.count("media") == 13 and kinds.count("mark") == 2  # at 100 and 200 ms
    done = {"type": "response.output_audio.done", "response_id": "resp_1", "item_id": "item_1"}
    [tail] = mark_names(bridge.on_openai(done, 1.0))  # the last 60 ms
    assert bridge.on_openai(done_event("resp_1"), 1.0) == []  # owed marks are sent once
    names = [*mark_names(outs), tail]
    for t, name in zip((1.1, 1.2, 1.26), names, strict=True):
        echo(bridge, name, t)
    assert not bridge.playback.unplayed(1.26)


def test_barge_in_between_sparse_marks_truncates_at_the_clock_position() -> None:
    from tests.relay.call.helpers import make as make_plain

    bridge, _ = make_plain()
    outs = speak(bridge, "resp_1", "item_1", 50, 20, 1.0)  # 1 s of audio at t=1.0
    first = mark_names(outs)[0]
    echo(bridge, first, 1.1)  # 100 ms played at t=1.1
    cut = bridge.on_openai({"type": "input_audio_buffer.speech_started"}, 1.235)
    [truncate] = [m for m in openai_msgs(cut) if m["type"] == "conversation.item.truncate"]
    assert truncate["audio_end_ms"] == 235  # 100 ms echoed + 135 ms on the clock
