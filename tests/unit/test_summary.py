"""The after-call summary's rules, without a network: missed calls, length, the fallback, the
prompt and who receives it."""

from __future__ import annotations

from common.config import load_config
from tasks import summary

SID = "CA" + "5" * 32
CALLER = "+14155550100"
T0 = 1_764_000_000.0


def record(seconds: float = 95, lines: list | None = None, **extra) -> dict:
    return {
        "call_sid": SID,
        "caller": CALLER,
        "direction": "inbound",
        "started_at": T0,
        "ended_at": T0 + seconds,
        "outcome": "transferred",
        "lines": lines if lines is not None else [
            ["assistant", "Hi, this is GateFrames. How can I help?"],
            ["caller", "My slide gate opener beeps and will not close."],
            ["assistant", "I will connect you with our service team."],
        ],
        "tool_calls": [{"name": "transfer_to_staff", "arguments": {"reason": "opener beeps"},
                        "result": "answered by +14155550142"}],
        "messages": [],
        "transfers": [{"to": "+14155550142", "status": "completed"}],
        **extra,
    }  # fmt: skip


def test_a_short_silent_call_is_a_missed_call_notice() -> None:
    missed = record(seconds=3, lines=[["assistant", "Hi, this is GateFrames."]])
    assert summary.is_missed(missed)
    text = summary.missed_text(missed)
    assert text.startswith(f"Missed call from {CALLER}") and SID in text
    assert "\n" not in text and len(text) <= summary.MAX_SUMMARY_CHARS


def test_a_short_call_with_caller_speech_or_a_long_silent_one_is_summarised() -> None:
    assert not summary.is_missed(record(seconds=3, lines=[["caller", "hello?"]]))
    assert not summary.is_missed(record(seconds=40, lines=[]))
    assert not summary.is_missed({"call_sid": SID, "lines": []})  # no times: never "missed"
    assert summary.is_missed(record(seconds=2, lines=[["caller", "  "]]))


def test_iso_times_are_read_too() -> None:
    rec = record(started_at="2026-12-01T10:00:00Z", ended_at="2026-12-01T10:00:02Z", lines=[])
    assert summary.duration_seconds(rec) == 2 and summary.is_missed(rec)
    assert "10:00 UTC" in summary.missed_text(rec)


def test_model_summary_gets_the_head_and_is_capped() -> None:
    text = summary.summary_from_model(record(), "word " * 400)
    assert text.startswith(f"Call summary: {CALLER} (inbound, 95 s")
    assert len(text) <= summary.MAX_SUMMARY_CHARS and text.endswith("…")


def test_fallback_is_built_from_the_record_and_capped() -> None:
    text = summary.fallback_text(record())
    assert CALLER in text and "slide gate opener beeps" in text
    assert "transfer_to_staff" in text and "Ended: transferred." in text
    long = record(lines=[["caller", "gate " * 500]], tool_calls=[{"x": "y" * 900}] * 5)
    assert len(summary.fallback_text(long)) <= summary.MAX_SUMMARY_CHARS
    assert "said nothing" in summary.fallback_text(record(lines=[]))


def test_prompt_asks_for_the_points_and_carries_the_record() -> None:
    system, user = summary.prompt(record())
    for point in ("who called", "why", "promised", "message", "transfer", "follow up"):
        assert point in system["content"]
    assert "600" not in system["content"] and "500 characters" in system["content"]
    assert f"Caller number: {CALLER}" in user["content"]
    assert "caller: My slide gate opener beeps" in user["content"]
    assert '"status": "completed"' in user["content"] and "Messages taken: none" in user["content"]


def test_destinations_add_the_voicemail_alias_once() -> None:
    cfg = load_config(
        {"STAFF_NOTIFY_TO": "+14155550142,+14155550143", "VOICEMAIL_NOTIFY_TO": "+14155550143"}
    )
    assert summary.destinations(cfg) == ["+14155550142", "+14155550143"]
    alias_only = load_config({"VOICEMAIL_NOTIFY_TO": "+14155550199"})
    assert summary.destinations(alias_only, ["+14155550111"]) == ["+14155550199", "+14155550111"]
