"""@call and @group from a text thread."""

from __future__ import annotations

from common.prompts import IDENTITY
from tests.sms.stack import BOT, BOT_NUMBER, Stack

ALICE = "+14155550100"


def _conv(state: dict, sid: str) -> dict:
    convs = state["conversations"]
    return convs[sid] if isinstance(convs, dict) else next(c for c in convs if c["sid"] == sid)


def test_call_with_formatted_numbers(sms: Stack) -> None:
    conv = sms.text(ALICE, "@call (415) 555-0000, 415.555.0001 +1 415 555 0002 12345")[
        "conversation_sid"
    ]
    [ack] = sms.wait_bot_messages(conv)
    assert ack["body"].startswith(IDENTITY)
    assert "Calling +14155550000, +14155550001, +14155550002 now!" in ack["body"]
    assert "Sorry, I couldn't call 12345 (not a valid US phone number)" in ack["body"]
    calls = sms.state()["calls"]
    calls = list(calls.values()) if isinstance(calls, dict) else calls
    assert sorted(c["to"] for c in calls) == ["+14155550000", "+14155550001", "+14155550002"]
    for call in calls:
        assert call["from"] == BOT_NUMBER
        assert call["url"] == sms.web_url + "/twilio/voice"
        assert call["machine_detection"] == "DetectMessageEnd"
    assert sms.chat_requests() == []  # a command is not sent to the model


def test_call_failure_is_reported(sms: Stack) -> None:
    sms.twilio_fault(method="POST", path_contains="/Calls.json", status=400, count=1, code=21215)
    conv = sms.text(ALICE, "@call 4155550000 4155550001")["conversation_sid"]
    [ack] = sms.wait_bot_messages(conv)
    assert "Calling +14155550001 now!" in ack["body"]
    assert "Sorry, I couldn't call +14155550000" in ack["body"]


def test_group_command_creates_thread(sms: Stack) -> None:
    origin = sms.text(ALICE, "@group (415) 555-0001 +1 415 555 0002")
    conv = origin["conversation_sid"]
    [ack] = sms.wait_bot_messages(conv)
    assert "I started a group text with you and +14155550001, +14155550002" in ack["body"]
    state = sms.state()
    convs = state["conversations"]
    convs = list(convs.values()) if isinstance(convs, dict) else convs
    [group] = [c for c in convs if c["sid"] != conv]
    assert group["friendly_name"].startswith("GF Group ")
    addresses = sorted(
        p["messaging_binding"]["address"]
        for p in group["participants"]
        if p.get("messaging_binding") and p["messaging_binding"].get("address")
    )
    assert addresses == sorted([ALICE, "+14155550001", "+14155550002"])
    bots = [p for p in group["participants"] if p.get("identity") == BOT]
    assert bots and bots[0]["messaging_binding"]["projected_address"] == BOT_NUMBER
    intro = [m for m in group["messages"] if m["author"] == BOT]
    assert len(intro) == 1 and "@ai" in intro[0]["body"]


def test_group_limits_are_explained(sms: Stack) -> None:
    numbers = " ".join(f"41555501{i:02d}" for i in range(10))
    conv = sms.text(ALICE, f"@group {numbers}")["conversation_sid"]
    [ack] = sms.wait_bot_messages(conv)
    assert "at most 5 numbers in one @group message" in ack["body"]  # COMMAND_MAX_NUMBERS
    conv2 = sms.text("+14155550199", "@group 4155550123 +44 20 7946 0958")["conversation_sid"]
    [ack2] = sms.wait_bot_messages(conv2)
    assert "+1" in ack2["body"] and "couldn't create the group" in ack2["body"]
    state = sms.state()
    convs = state["conversations"]
    assert len(convs) == 2  # no group was created


def _groups(sms: Stack, origin: str) -> list[dict]:
    convs = sms.state()["conversations"]
    convs = list(convs.values()) if isinstance(convs, dict) else convs
    return [c for c in convs if c["sid"] != origin]


def test_group_that_exists_is_reused_not_duplicated(sms: Stack) -> None:
    """Twilio answers 50438 for a second group with the same people: the half-made thread is
    deleted, the existing group gets a note, and no conversation is left without the bot."""
    origin = sms.text(ALICE, "@group 4155550001 4155550002")["conversation_sid"]
    [first] = sms.wait_bot_messages(origin)
    assert "I started a group text" in first["body"]
    [group] = _groups(sms, origin)
    sms.text(ALICE, "@group (415) 555-0002 (415) 555-0001", conversation_sid=origin)
    second = sms.wait_bot_messages(origin, count=2)[1]
    assert second["body"].startswith(IDENTITY)
    assert "You already have a group text with" in second["body"]
    [still] = _groups(sms, origin)  # the half-made second group was deleted
    assert still["sid"] == group["sid"]
    bots = [m for m in still["messages"] if m["author"] == BOT]
    assert len(bots) == 2 and "already is one" in bots[1]["body"]
    assert any(p.get("identity") == BOT for p in still["participants"])


def test_group_binding_conflict_gets_a_plain_reason(sms: Stack) -> None:
    """50416 (an address already bound in another active conversation): a short reason, no
    Twilio wording, and the half-made conversation is gone."""
    sms.twilio_fault(method="POST", path_contains="/Participants", status=409, code=50416, count=1)
    origin = sms.text(ALICE, "@group 4155550001 4155550002")["conversation_sid"]
    [ack] = sms.wait_bot_messages(origin)
    assert "couldn't create the group" in ack["body"]
    assert "already in another active text thread" in ack["body"]
    assert "binding" not in ack["body"] and "proxy" not in ack["body"]
    assert _groups(sms, origin) == []


def test_twilio_error_text_is_never_echoed(sms: Stack) -> None:
    sms.twilio_fault(
        method="POST",
        path_contains="/Calls.json",
        status=400,
        count=1,
        code=21999,
        message="Account AC123 internal routing table foo is misconfigured",
    )
    conv = sms.text(ALICE, "@call 4155550000")["conversation_sid"]
    [ack] = sms.wait_bot_messages(conv)
    assert "Sorry, I couldn't call +14155550000 (the phone service refused it)" in ack["body"]
    assert "routing" not in ack["body"] and "AC123" not in ack["body"]
    assert "internal routing table" in sms.log_text("worker")  # staff can see why
