"""The voicemail notice's text and who it names, without a network."""

from __future__ import annotations

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


def test_a_notice_that_cannot_be_queued_is_logged_and_counted(monkeypatch, caplog) -> None:
    from celery import Celery
    from prometheus_client import REGISTRY

    from relay.call import notify
    from tests.support import free_port

    def lost() -> float:
        return REGISTRY.get_sample_value("relay_voicemail_notices_total", {"outcome": "lost"}) or 0

    dead = Celery("gateframes", broker=f"redis://127.0.0.1:{free_port()}/0")
    dead.conf.broker_connection_timeout = 0.5
    monkeypatch.setattr(notify, "_app", dead)
    monkeypatch.setattr(notify, "RETRY_POLICY", {"max_retries": 1, "interval_start": 0.1})
    before = lost()
    params = {"direction": "outbound", "to": "+14155550000"}
    assert notify.queue_voicemail_notice(SID, params, "voicemail_left", []) is False
    assert lost() == before + 1
    [record] = [r for r in caplog.records if r.getMessage().startswith("voicemail notice not")]
    assert record.call_sid == SID and record.levelname == "ERROR"
