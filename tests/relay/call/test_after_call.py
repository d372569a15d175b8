"""Which text a finished call produces (relay/after_call.py), without a broker: one per number
per call, nothing when no destination is configured."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from relay.call import after_call, notify
from relay.call.outputs import EndCall, Transcript

CALL_SID = "CA" + "2" * 32


@dataclass
class FakeBridge:
    voicemail: bool = False
    call_sid: str = CALL_SID
    params: dict[str, str] = field(
        default_factory=lambda: {"direction": "inbound", "from": "+14155550100"}
    )
    transcript: Transcript = field(default_factory=Transcript)
    transfers: list[dict[str, str]] = field(default_factory=list)
    started_at_start: float | None = 0.0
    reconnected: int = 0
    drops: int = 0
    gaps: list[float] = field(default_factory=list)

    def tool_calls_record(self) -> list[dict[str, Any]]:
        return [{"name": "end_call", "arguments": {}, "result": "ok"}]


class FakeCall:
    def __init__(self, bridge: FakeBridge):
        self.bridge = bridge

    def wait_for_actions(self, timeout: float) -> None:
        pass


def cfg(**kw: Any) -> Any:
    base = {
        "staff_notify_to": (),
        "staff_conversation_sid": "",
        "voicemail_notify_to": "",
        "staff_transfer_number": "",
        "staff_transfer_timeout_seconds": 5,
    }
    return SimpleNamespace(**{**base, **kw})


@pytest.fixture
def records() -> list[dict[str, Any]]:
    """The call records queued for the call log."""
    return []


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch, records: list) -> list[tuple[str, Any]]:
    got: list[tuple[str, Any]] = []
    monkeypatch.setattr(notify, "queue_record", records.append)
    monkeypatch.setattr(notify, "queue_summary", lambda record: got.append(("summary", record)))
    monkeypatch.setattr(
        notify, "queue_voicemail_notice", lambda sid, *a: got.append(("voicemail", sid))
    )
    monkeypatch.setattr(after_call, "_notes", lambda sid: [])
    return got


def test_every_call_gets_the_summary_with_its_record(queued: list) -> None:
    bridge = FakeBridge()
    bridge.transcript.add("caller", "hello")
    after_call.after_call(
        cfg(staff_notify_to=("+14155550142",)),
        FakeCall(bridge),
        EndCall("assistant_hung_up", True),
        100.0,
    )
    [(kind, record)] = queued
    assert kind == "summary"
    assert record["call_sid"] == CALL_SID and record["caller"] == "+14155550100"
    assert record["direction"] == "inbound" and record["outcome"] == "assistant_hung_up"
    assert record["lines"] == [["caller", "hello"]] and record["started_at"] == 100.0
    assert record["tool_calls"] == [{"name": "end_call", "arguments": {}, "result": "ok"}]


def test_a_voicemail_with_staff_destinations_is_in_the_summary_not_a_notice(queued: list) -> None:
    c = cfg(staff_notify_to=("+14155550142",), voicemail_notify_to="+14155550199")
    after_call.after_call(
        c, FakeCall(FakeBridge(voicemail=True)), EndCall("voicemail_left", True), 0.0
    )
    assert [k for k, _ in queued] == ["summary"]


@pytest.mark.parametrize(
    ("reason", "expected"), [("voicemail_left", ["voicemail"]), ("voicemail_failed", [])]
)
def test_only_voicemail_notify_to_keeps_the_voicemail_notice(
    queued: list, reason: str, expected: list
) -> None:
    c = cfg(voicemail_notify_to="+14155550199")
    after_call.after_call(c, FakeCall(FakeBridge(voicemail=True)), EndCall(reason, True), 0.0)
    assert [k for k, _ in queued] == expected


def test_no_destination_queues_nothing_and_says_why_once(
    queued: list, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.call.after_call")
    after_call._warned_no_destination = False
    for _ in range(2):
        after_call.after_call(cfg(), FakeCall(FakeBridge()), EndCall("caller_hung_up", True), 0.0)
    assert queued == []
    said = [r.message for r in caplog.records if r.message.startswith("no call summaries")]
    assert said == [
        "no call summaries: STAFF_NOTIFY_TO, STAFF_CONVERSATION_SID and VOICEMAIL_NOTIFY_TO "
        "are all unset"
    ]


def test_a_call_handed_to_another_relay_is_summarised_there(queued: list) -> None:
    c = cfg(staff_notify_to=("+14155550142",))
    after_call.after_call(c, FakeCall(FakeBridge()), EndCall("handed_over", False), 0.0)
    assert queued == []


def test_every_call_goes_to_the_log_whatever_the_destinations(queued: list, records: list) -> None:
    after_call._warned_no_destination = True
    bridge = FakeBridge()
    bridge.transcript.add("caller", "hello")
    after_call.after_call(cfg(), FakeCall(bridge), EndCall("caller_hung_up", True), 5.0)
    c = cfg(voicemail_notify_to="+14155550199")
    after_call.after_call(
        c, FakeCall(FakeBridge(voicemail=True)), EndCall("voicemail_left", 1), 0.0
    )
    assert queued == [("voicemail", CALL_SID)]  # no summary destination: the notice only
    assert [(r["call_sid"], r["outcome"]) for r in records] == [
        (CALL_SID, "caller_hung_up"),
        (CALL_SID, "voicemail_left"),
    ]
    assert records[0]["lines"] == [["caller", "hello"]] and records[0]["started_at"] == 5.0


def test_a_call_handed_over_is_logged_by_the_relay_that_ends_it(
    queued: list, records: list
) -> None:
    c = cfg(staff_notify_to=("+14155550142",))
    after_call.after_call(c, FakeCall(FakeBridge()), EndCall("handed_over", False), 0.0)
    assert records == []
