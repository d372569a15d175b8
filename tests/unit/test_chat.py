"""Building the chat request and shaping the SMS reply."""

from __future__ import annotations

from common.names import SMS_MAX_CHARS as MAX_BODY_CHARS
from common.names import fit_sms
from common.prompts import IDENTITY, with_identity
from tasks.chat import Turn, build_messages, media_types

BOTS = {"gateframes-bot", "+14082605145", "system"}


def test_history_roles_and_order() -> None:
    history = [
        Turn("+14155550000", "hi", sid="IM1"),
        Turn("gateframes-bot", "This is the GateFrames A.I. assistant. Hello!", sid="IM2"),
        Turn("+14155550000", "I need a slide gate", sid="IM3"),
    ]
    msgs = build_messages(history, history[-1], bot_authors=BOTS, is_group=False)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[-1]["content"] == "I need a slide gate"  # current message last, not twice
    assert "driveway gates" in msgs[0]["content"]


def test_group_turns_name_the_author_and_strip_mention() -> None:
    current = Turn("+14155550001", "@ai what opener for a 20 ft gate?", sid="IM9")
    msgs = build_messages([current], current, bot_authors=BOTS, is_group=True)
    assert msgs[-1]["content"] == "+14155550001: what opener for a 20 ft gate?"


def test_media_only_message_gets_instruction() -> None:
    current = Turn("+14155550000", "", media=("image/jpeg",), sid="IM5")
    msgs = build_messages([current], current, bot_authors=BOTS, is_group=False)
    assert "[sent a photo]" in msgs[-1]["content"]
    assert "without any words" in msgs[-1]["content"]


def test_media_types_both_casings() -> None:
    assert media_types('[{"ContentType": "image/png"}]') == ("image/png",)
    assert media_types([{"content_type": "video/mp4"}]) == ("video/mp4",)
    assert media_types("not json") == ("unknown",)
    assert media_types(None) == ()


def test_identity_added_once() -> None:
    assert with_identity("Hello!") == f"{IDENTITY} Hello!"
    assert with_identity(f"{IDENTITY} Hello!") == f"{IDENTITY} Hello!"
    assert with_identity("This is the GateFrames AI assistant: Hello!") == f"{IDENTITY} Hello!"


def test_fit_sms() -> None:
    long = "word " * 1000
    out = fit_sms(long)
    assert len(out) <= MAX_BODY_CHARS and out.endswith("…")
    assert fit_sms("short") == "short"
