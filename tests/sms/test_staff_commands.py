"""Toll fraud, attempted end to end: @call and @group are for staff, to ordinary US/Canadian
numbers, a few at a time and a few hundred a day. Every refusal is checked in the Twilio
simulator's own records: no call was created, no group conversation exists."""

from __future__ import annotations

from common.prompts import IDENTITY
from tests.sms.stack import BOT_NUMBER, STAFF, Stack

ALICE, DANA = STAFF
MALLORY = "+14155550666"  # texts the public number; not staff


#: Small caps so a test can use them up: 3 calls per author and 4 in all per day.
STACK_ENV = {"CALLS_PER_AUTHOR_PER_DAY": "3", "CALLS_PER_DAY": "4", "COMMAND_MAX_NUMBERS": "5"}


def _calls(sms: Stack) -> list[dict]:
    calls = sms.state()["calls"]
    return list(calls.values()) if isinstance(calls, dict) else calls


def _conversations(sms: Stack) -> list[dict]:
    convs = sms.state()["conversations"]
    return list(convs.values()) if isinstance(convs, dict) else convs


def test_non_staff_call_dials_nothing(sms: Stack) -> None:
    numbers = " ".join(f"415555{i:04d}" for i in range(1000, 1004))
    conv = sms.text(MALLORY, f"@call 900-555-0199 (876) 555-0100 {numbers}")["conversation_sid"]
    [reply] = sms.wait_bot_messages(conv)
    assert reply["body"].startswith(IDENTITY)
    assert "only GateFrames staff can use @call" in reply["body"]
    assert _calls(sms) == []
    assert sms.chat_requests() == []  # nor is the command handed to the model


def test_non_staff_group_texts_nobody(sms: Stack) -> None:
    conv = sms.text(MALLORY, "@group 4155551001 4155551002")["conversation_sid"]
    [reply] = sms.wait_bot_messages(conv)
    assert "only GateFrames staff can use @group" in reply["body"]
    assert [c["sid"] for c in _conversations(sms)] == [conv]  # no group was made
    assert sms.state()["sms"] == []  # and no SMS went anywhere


def test_staff_call_is_placed(sms: Stack) -> None:
    conv = sms.text(ALICE, "@call (415) 555-1000")["conversation_sid"]
    [ack] = sms.wait_bot_messages(conv)
    assert "Calling +14155551000 now!" in ack["body"]
    [call] = _calls(sms)
    assert (call["to"], call["from"]) == ("+14155551000", BOT_NUMBER)


def test_costly_and_foreign_destinations_are_refused(sms: Stack) -> None:
    text = f"@call 900-555-0199 (876) 555-0100 415-976-1234 {BOT_NUMBER[2:]} (604) 555-0123"
    conv = sms.text(ALICE, text)["conversation_sid"]
    [ack] = sms.wait_bot_messages(conv)
    body = ack["body"]
    assert "+19005550199 (premium-rate numbers are not allowed)" in body
    assert "+18765550100 (only US and Canadian numbers are allowed)" in body  # Jamaica
    assert "+14159761234 (premium-rate numbers are not allowed)" in body  # a 976 exchange
    assert f"{BOT_NUMBER} (that is my own number)" in body
    assert "Calling +16045550123 now!" in body  # Vancouver: Canada is fine
    assert [c["to"] for c in _calls(sms)] == ["+16045550123"]


def test_premium_and_caribbean_numbers_cannot_join_a_group(sms: Stack) -> None:
    conv = sms.text(ALICE, "@group 4155551001 (876) 555-0100")["conversation_sid"]
    [ack] = sms.wait_bot_messages(conv)
    assert "couldn't create the group" in ack["body"]
    assert "+18765550100 (only US and Canadian numbers are allowed)" in ack["body"]
    assert [c["sid"] for c in _conversations(sms)] == [conv]


def test_too_many_numbers_in_one_message(sms: Stack) -> None:
    numbers = " ".join(f"415555{i:04d}" for i in range(1000, 1006))  # six
    conv = sms.text(ALICE, f"@call {numbers}")["conversation_sid"]
    [ack] = sms.wait_bot_messages(conv)
    assert "at most 5 numbers" in ack["body"]
    assert _calls(sms) == []


def test_daily_caps_per_author_and_for_everyone(sms: Stack) -> None:
    conv = sms.text(ALICE, "@call 4155551001 4155551002 4155551003 4155551004")["conversation_sid"]
    [ack] = sms.wait_bot_messages(conv)
    assert "Calling +14155551001, +14155551002, +14155551003 now!" in ack["body"]
    assert (
        "Today's limit for outbound calls is reached, so I didn't call +14155551004"
        in (ack["body"])
    )
    # DANA has her own allowance, but only one call is left for everyone today
    other = sms.text(DANA, "@call 4155552001 4155552002")["conversation_sid"]
    [ack2] = sms.wait_bot_messages(other)
    assert "Calling +14155552001 now!" in ack2["body"]
    assert "didn't call +14155552002" in ack2["body"]
    assert sorted(c["to"] for c in _calls(sms)) == [
        "+14155551001",
        "+14155551002",
        "+14155551003",
        "+14155552001",
    ]


def test_a_refused_call_gives_its_allowance_back(sms: Stack) -> None:
    sms.twilio_fault(method="POST", path_contains="/Calls.json", status=400, count=3, code=21215)
    conv = sms.text(ALICE, "@call 4155551001 4155551002 4155551003")["conversation_sid"]
    [ack] = sms.wait_bot_messages(conv)
    assert "calls to that number are not allowed" in ack["body"]
    conv2 = sms.text(ALICE, "@call 4155551005", conversation_sid=conv)["conversation_sid"]
    acks = sms.wait_bot_messages(conv2, count=2)
    assert "Calling +14155551005 now!" in acks[1]["body"]
