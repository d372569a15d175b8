"""The call's tools, without a network: definitions, argument checks, decisions, events."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.realtime import (
    RealtimeClientEvent,
    RealtimeFunctionTool,
    RealtimeServerEvent,
)
from openai.types.realtime.realtime_conversation_item_function_call_output import (
    RealtimeConversationItemFunctionCallOutput,
)
from prometheus_client import REGISTRY
from pydantic import Field, TypeAdapter

from common import prompts
from common.staff_hours import parse as parse_hours
from relay.call.tool_specs import END_CALL, SEND_TEXT, TAKE_MESSAGE, TRANSFER
from relay.call.tools import (
    MAX_TEXTS_PER_CALL,
    TEXT_INTERVAL_SECONDS,
    Hangup,
    Nothing,
    SendText,
    TakeMessage,
    ToolBox,
    ToolSettings,
    Transfer,
)
from relay.protocol.realtime import function_call_output, message, response_create
from relay.protocol.realtime import function_calls_in as tool_calls_in

BOT = "+14082605145"
CALLER = "+14155550100"
STAFF = "+14155550199"
HOURS = parse_hours("Mon-Fri 08:00-17:00 America/Los_Angeles")
# A Wednesday at 10:00 and 20:00 in Los Angeles (PDT, UTC-7).
OPEN = dt.datetime(2026, 6, 10, 17, 0, tzinfo=dt.UTC)
CLOSED = dt.datetime(2026, 6, 11, 3, 0, tzinfo=dt.UTC)

CLIENT_EVENT: TypeAdapter[Any] = TypeAdapter(
    Annotated[RealtimeClientEvent, Field(discriminator="type")]
)
SERVER_EVENT: TypeAdapter[Any] = TypeAdapter(
    Annotated[RealtimeServerEvent, Field(discriminator="type")]
)


def box(transfer: str = STAFF, hours: Any = HOURS, caller: str = CALLER, bot: str = BOT) -> ToolBox:
    return ToolBox(ToolSettings(transfer, hours, bot), caller)


def args(**fields: Any) -> str:
    return json.dumps(fields)


def counted(tool: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("relay_tool_calls_total", {"tool": tool, "outcome": outcome})
    return value or 0.0


# -- definitions ----------------------------------------------------------------------------
def test_tools_are_ga_function_tools_in_a_valid_session_update() -> None:
    tools = box().tools()
    assert [t["name"] for t in tools] == [END_CALL, TRANSFER, SEND_TEXT, TAKE_MESSAGE]
    for tool in tools:
        parsed = RealtimeFunctionTool.model_validate(tool)
        assert parsed.model_dump(exclude_unset=True) == tool  # no field the SDK does not know
        schema = tool["parameters"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert schema["required"] == list(schema["properties"])
        assert all(p["type"] == "string" for p in schema["properties"].values())
    update = {"type": "session.update", "session": {"type": "realtime", "tools": tools}}
    event = CLIENT_EVENT.validate_python(update)
    assert event.type == "session.update"
    assert [t.name for t in event.session.tools] == [t["name"] for t in tools]


def test_no_transfer_tool_without_a_staff_number() -> None:
    names = [t["name"] for t in box(transfer="").tools()]
    assert names == [END_CALL, SEND_TEXT, TAKE_MESSAGE]


def test_descriptions_name_the_callers_number_only_when_known() -> None:
    known = {t["name"]: t["description"] for t in box().tools()}
    unknown = {t["name"]: t["description"] for t in box(caller="").tools()}
    assert CALLER in known[SEND_TEXT] and CALLER in known[TAKE_MESSAGE]
    assert all(CALLER not in d for d in unknown.values())


def test_tool_instructions_name_every_tool() -> None:
    for name in (END_CALL, TRANSFER, SEND_TEXT, TAKE_MESSAGE):
        assert name in prompts.TOOL_INSTRUCTIONS


# -- end_call -------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["", "{}", "  "])
def test_end_call_hangs_up_after_a_goodbye(raw: str) -> None:
    tools = box()
    done = tools.handle(END_CALL, raw, "call_1", now=0.0)
    assert done.action == Hangup() and done.outcome == "ok" and not done.pending
    assert done.output == prompts.TOOL_END_CALL_OUTPUT and "goodbye" in done.output
    again = tools.handle(END_CALL, "{}", "call_2", now=1.0)
    assert again.action == Nothing() and again.outcome == "unavailable"
    assert "already ending" in again.output


def test_end_call_with_arguments_is_refused() -> None:
    done = box().handle(END_CALL, args(now=True), "call_1", now=0.0)
    assert done.action == Nothing() and done.outcome == "invalid"
    assert "unexpected field 'now'" in done.output


# -- transfer_to_staff ----------------------------------------------------------------------
def test_transfer_inside_staff_hours() -> None:
    tools = box()
    done = tools.handle(TRANSFER, args(reason="  wants a quote\n"), "c1", 0.0, OPEN)
    assert done.action == Transfer("wants a quote") and done.outcome == "ok"
    assert done.output == prompts.TOOL_TRANSFER_OUTPUT
    assert tools.ending  # nothing else happens on a call being handed over
    assert tools.handle(SEND_TEXT, args(message="hi"), "c2", 1.0).outcome == "unavailable"


def test_transfer_outside_staff_hours_offers_a_message() -> None:
    done = box().handle(TRANSFER, args(reason="quote"), "c1", 0.0, CLOSED)
    assert done.action == Nothing() and done.outcome == "staff_away"
    assert HOURS.describe() in done.output and "take_message" in done.output


def test_transfer_without_staff_hours_is_always_open() -> None:
    done = box(hours=None).handle(TRANSFER, args(reason="quote"), "c1", 0.0, CLOSED)
    assert done.action == Transfer("quote")


def test_transfer_without_a_staff_number_is_an_unknown_tool() -> None:
    before = counted(TRANSFER, "unknown_tool")
    done = box(transfer="").handle(TRANSFER, args(reason="x"), "c1", 0.0, OPEN)
    assert done.action == Nothing() and done.outcome == "unknown_tool"
    assert counted(TRANSFER, "unknown_tool") == before + 1


def test_transfer_failed_puts_the_call_back_in_the_assistants_hands() -> None:
    tools = box()
    tools.handle(TRANSFER, args(reason="quote"), "c1", 0.0, OPEN)
    note, respond = tools.transfer_failed()
    assert not tools.ending
    assert CLIENT_EVENT.validate_python(note).item.role == "system"
    assert CLIENT_EVENT.validate_python(respond).type == "response.create"


# -- send_text ------------------------------------------------------------------------------
def test_send_text_goes_to_the_callers_number_with_the_identity() -> None:
    done = box().handle(SEND_TEXT, args(message="Our slide gates: gateframes.com/slide"), "c", 0)
    assert done.pending and done.output == ""  # the output comes with the result
    assert done.action == SendText(
        to=CALLER, body=f"{prompts.IDENTITY} Our slide gates: gateframes.com/slide"
    )


def test_send_text_cannot_name_another_number() -> None:
    done = box().handle(SEND_TEXT, args(message="hi", to="+14155550111"), "c", 0.0)
    assert done.action == Nothing() and "unexpected field 'to'" in done.output


def test_send_text_rate_limits() -> None:
    tools = box()
    assert isinstance(tools.handle(SEND_TEXT, args(message="one"), "c1", 100.0).action, SendText)
    soon = tools.handle(SEND_TEXT, args(message="two"), "c2", 110.0)
    assert soon.action == Nothing() and soon.outcome == "rate_limited"
    assert "try again in 20 seconds" in soon.output
    later = 100.0 + TEXT_INTERVAL_SECONDS
    for i in range(1, MAX_TEXTS_PER_CALL):
        step = later + i * TEXT_INTERVAL_SECONDS
        assert isinstance(
            tools.handle(SEND_TEXT, args(message="x"), f"d{i}", step).action, SendText
        )
    over = tools.handle(SEND_TEXT, args(message="x"), "e", 10_000.0)
    assert over.outcome == "rate_limited" and f"at most {MAX_TEXTS_PER_CALL}" in over.output


@pytest.mark.parametrize(
    ("caller", "outcome"),
    [
        ("", "unavailable"),
        ("anonymous", "unavailable"),
        ("+19005550100", "refused"),
        (BOT, "refused"),
    ],
)
def test_send_text_needs_a_textable_caller(caller: str, outcome: str) -> None:
    done = box(caller=caller).handle(SEND_TEXT, args(message="hi"), "c", 0.0)
    assert done.action == Nothing() and done.outcome == outcome and done.output.startswith("Not")


@pytest.mark.parametrize(
    ("result", "outcome", "words"),
    [
        ("sent", "sent", "on its way"),
        ("refused", "refused", "cannot"),
        ("failed", "failed", "failed"),
    ],
)
def test_send_text_result_becomes_the_output(result: str, outcome: str, words: str) -> None:
    tools = box()
    pending = tools.handle(SEND_TEXT, args(message="hi"), "c", 0.0)
    before = counted(SEND_TEXT, outcome)
    done = tools.finish(pending, result)
    assert done.outcome == outcome and words in done.output and not done.pending
    assert counted(SEND_TEXT, outcome) == before + 1
    assert tools.records == [done]
    assert done.transcript_line() == ("tool", f"send_text(message='hi') -> {outcome}")


# -- take_message ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "number", ["(415) 555-0123", "415.555.0123", "+1 415 555 0123", "14155550123"]
)
def test_take_message_normalises_the_callback_number(number: str) -> None:
    tools = box()
    done = tools.handle(
        TAKE_MESSAGE, args(name="Ana", callback_number=number, message="Call me"), "c", 0.0
    )
    assert done.action == TakeMessage("Ana", "+14155550123", "Call me") and done.pending
    stored = tools.finish(done, "stored")
    assert stored.output == prompts.TOOL_MESSAGE_TAKEN_OUTPUT and stored.outcome == "stored"
    assert stored.args["callback_number"] == "+14155550123"


@pytest.mark.parametrize(
    ("number", "outcome", "words"),
    [
        ("555-0123", "invalid", "not a valid US or Canadian phone number"),
        ("+44 20 7946 0958", "invalid", "not a valid US or Canadian phone number"),
        ("(900) 555-0123", "refused", "premium"),
        ("(408) 260-5145", "refused", "my own number"),
        ("(415) 911-0123", "refused", "service codes"),
    ],
)
def test_take_message_refuses_bad_callback_numbers(number: str, outcome: str, words: str) -> None:
    done = box().handle(
        TAKE_MESSAGE, args(name="Ana", callback_number=number, message="hi"), "c", 0.0
    )
    assert done.action == Nothing() and done.outcome == outcome and words in done.output


def test_take_message_storage_failure_is_said() -> None:
    tools = box()
    pending = tools.handle(
        TAKE_MESSAGE, args(name="A", callback_number="4155550123", message="m"), "c", 0.0
    )
    done = tools.finish(pending, "failed")
    assert done.outcome == "failed" and "could not be saved" in done.output


# -- bad arguments --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "raw", "problem"),
    [
        (TRANSFER, "{not json", "the arguments are not valid JSON"),
        (TRANSFER, "[]", "the arguments must be a JSON object"),
        (TRANSFER, "{}", "missing field 'reason'"),
        (TRANSFER, args(reason=3), "field 'reason' must be a string"),
        (TRANSFER, args(reason=None), "field 'reason' must be a string"),
        (TRANSFER, args(reason=" \n "), "field 'reason' is empty"),
        (TRANSFER, args(reason="x" * 201), "field 'reason' is too long (at most 200 characters)"),
        (TRANSFER, args(reason="x", urgent=True), "unexpected field 'urgent'"),
        (SEND_TEXT, args(message="x" * 601), "field 'message' is too long"),
        (SEND_TEXT, "", "the arguments are not valid JSON"),
        (TAKE_MESSAGE, args(name="A", message="m"), "missing field 'callback_number'"),
        (TAKE_MESSAGE, "x" * 5000, "the arguments are too long"),
        (TAKE_MESSAGE, "[" * 1990 + "]" * 1990, "the arguments are not valid JSON"),  # too deep
    ],
)
def test_bad_arguments_say_exactly_what_is_wrong(name: str, raw: str, problem: str) -> None:
    before = counted(name, "invalid")
    done = box().handle(name, raw, "c", 0.0, OPEN)
    assert done.action == Nothing() and done.outcome == "invalid"
    assert problem in done.output and f"Call {name} again" in done.output
    assert counted(name, "invalid") == before + 1


def test_bad_arguments_name_every_problem_at_once() -> None:
    """One output lists all that is wrong, so the model fixes it in one more try."""
    done = box().handle(SEND_TEXT, args(text="the link"), "c", 0.0, OPEN)
    assert "unexpected field 'text'" in done.output and "missing field 'message'" in done.output
    done = box().handle(TAKE_MESSAGE, args(name=" ", callback_number=5, extra=1), "c", 0.0)
    for problem in (
        "unexpected field 'extra'",
        "field 'name' is empty",
        "field 'callback_number' must be a string",
        "missing field 'message'",
    ):
        assert problem in done.output


def test_unknown_tool_names_share_one_metric_label() -> None:
    before = counted("unknown", "unknown_tool")
    done = box().handle("format_disk" * 10, "{}", "c", 0.0)
    assert done.outcome == "unknown_tool" and "no tool named" in done.output
    assert counted("unknown", "unknown_tool") == before + 1


@given(name=st.sampled_from([END_CALL, TRANSFER, SEND_TEXT, TAKE_MESSAGE, "x"]), raw=st.text())
def test_any_arguments_get_an_output_never_an_exception(name: str, raw: str) -> None:
    done = box().handle(name, raw, "c", 0.0, OPEN)
    assert isinstance(done.output, str) and (done.output or done.pending)


@given(
    fields=st.dictionaries(
        st.sampled_from(["name", "callback_number", "message", "other"]),
        st.one_of(st.text(max_size=50), st.integers(), st.none(), st.lists(st.text())),
    )
)
def test_any_json_object_gets_an_output_never_an_exception(fields: dict[str, Any]) -> None:
    done = box().handle(TAKE_MESSAGE, json.dumps(fields), "c", 0.0)
    assert done.output or done.pending


# -- function calls from OpenAI events ------------------------------------------------------
def arguments_done(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "type": "response.function_call_arguments.done",
        "event_id": "event_1",
        "response_id": "resp_1",
        "item_id": "item_" + call_id,
        "output_index": 0,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def function_item(call_id: str, name: str, arguments: str, status: str = "completed") -> dict:
    return {
        "id": "item_" + call_id,
        "type": "function_call",
        "object": "realtime.item",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response_done(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "response.done",
        "event_id": "event_2",
        "response": {
            "id": "resp_1",
            "object": "realtime.response",
            "status": "completed",
            "output": list(items),
        },
    }


def test_fixture_events_are_ga_server_events() -> None:
    SERVER_EVENT.validate_python(arguments_done("call_a", END_CALL, "{}"))
    done = SERVER_EVENT.validate_python(response_done(function_item("call_a", END_CALL, "{}")))
    assert done.response.output[0].type == "function_call"


def test_calls_from_both_sources_are_deduplicated_by_call_id() -> None:
    tools = box()
    first = tools.calls_in(arguments_done("call_a", SEND_TEXT, args(message="hi")))
    assert [(c.name, c.call_id, c.response_id) for c in first] == [(SEND_TEXT, "call_a", "resp_1")]
    later = tools.calls_in(
        response_done(
            function_item("call_a", SEND_TEXT, args(message="hi")),
            function_item("call_b", END_CALL, "{}"),
        )
    )
    assert [c.call_id for c in later] == ["call_b"]
    assert tools.calls_in(arguments_done("call_b", END_CALL, "{}")) == []


def test_response_done_alone_yields_its_calls_in_order() -> None:
    event = response_done(
        {"type": "message", "role": "assistant", "content": []},
        function_item("call_a", SEND_TEXT, "{}"),
        function_item("call_cut", END_CALL, "{", status="incomplete"),  # cut off mid-call
        function_item("call_b", END_CALL, "{}"),
    )
    assert [c.call_id for c in tool_calls_in(event)] == ["call_a", "call_b"]


@pytest.mark.parametrize(
    "event",
    [
        {"type": "response.function_call_arguments.done", "name": END_CALL, "arguments": "{}"},
        {"type": "response.function_call_arguments.done", "call_id": 7},
        {"type": "response.done", "response": None},
        {"type": "response.done", "response": {"output": "nope"}},
        {"type": "response.done", "response": {"output": [None, 3, {"type": "function_call"}]}},
        {"type": "response.output_audio.delta", "delta": "AA=="},
    ],
)
def test_malformed_events_yield_no_calls(event: dict[str, Any]) -> None:
    assert tool_calls_in(event) == []


def test_handle_call_keeps_the_response_id() -> None:
    tools = box()
    [call] = tools.calls_in(arguments_done("call_a", END_CALL, "{}"))
    done = tools.handle_call(call, now=0.0)
    assert done.call.response_id == "resp_1" and tools.records == [done]
    assert done.transcript_line() == ("tool", "end_call() -> ok")


# -- client events back to OpenAI -----------------------------------------------------------
def test_function_call_output_is_a_ga_client_event() -> None:
    event = function_call_output("call_a", "Sent.")
    parsed = CLIENT_EVENT.validate_python(event)
    assert isinstance(parsed.item, RealtimeConversationItemFunctionCallOutput)
    assert (parsed.item.call_id, parsed.item.output) == ("call_a", "Sent.")
    assert parsed.model_dump(exclude_unset=True) == event


def test_response_create_and_system_note_are_ga_client_events() -> None:
    assert CLIENT_EVENT.validate_python(response_create()).model_dump(exclude_unset=True) == {
        "type": "response.create"
    }
    note = message("system", "The transfer did not go through.")
    assert CLIENT_EVENT.validate_python(note).model_dump(exclude_unset=True) == note
