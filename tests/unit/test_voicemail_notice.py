"""The voicemail notice's text and who it names, without a network."""

from __future__ import annotations

from relay.notify import callee_of
from tasks.voicemail import MAX_SMS_CHARS, notice_text

SID = "CA" + "4" * 32


def test_notice_names_the_callee_the_call_and_what_was_said() -> None:
    notice = {
        "call_sid": SID,
        "callee": "+14155550000",
        "reason": "voicemail_left",
        "lines": [["assistant", "Hello, this is GateFrames."], ["assistant", "Call us back."]],
    }
    assert notice_text(notice) == (
        f"The GateFrames A.I. assistant left a voicemail for +14155550000 (call {SID}): "
        '"Hello, this is GateFrames. Call us back."'
    )


def test_notice_when_the_machine_cut_the_message_off() -> None:
    text = notice_text({"call_sid": SID, "callee": "+14155550000", "reason": "voicemail_timeout"})
    assert "did not let it finish" in text and text.endswith(".")


def test_caller_lines_are_not_part_of_the_notice_and_length_is_capped() -> None:
    lines = [["caller", "beep"], ["assistant (interrupted at 1.0 s)", "x" * 5000]]
    text = notice_text({"call_sid": SID, "callee": "", "reason": "voicemail_left", "lines": lines})
    assert "beep" not in text and "an unknown number" in text
    assert len(text) == MAX_SMS_CHARS and text.endswith("…")


def test_callee_is_to_on_outbound_calls_and_from_otherwise() -> None:
    params = {"direction": "outbound", "from": "+14082605145", "to": "+14155550000"}
    assert callee_of(params) == "+14155550000"
    assert callee_of({**params, "direction": "inbound"}) == "+14082605145"
    assert callee_of({}) == ""
