"""How a call ends: one method sets the bridge's end, the first end stands, and the reasons
are the strings other processes store and compare."""

from __future__ import annotations

from common.end_reasons import VOICEMAIL_REASONS, EndReason
from relay.call.after_call import NOT_SUMMARISED
from relay.call.outputs import EndCall
from relay.call.session import REST_HANGUP_REASONS
from tests.relay.call.helpers import SID, audio, make

#: Stored under the call-end key, sent as a summary's outcome, counted as a metrics label:
#: renaming one breaks the web process, the workers or a dashboard.
STORED = {
    "caller_hung_up",
    "assistant_hung_up",
    "transferred",
    "voicemail_left",
    "voicemail_timeout",
    "time_limit",
    "twilio_closed",
    "handed_over",
    "call_sid_mismatch",
    "greeting_failed",
    "voicemail_failed",
    "goodbye_failed",
    "upstream_lost",
    "twilio_stalled",
    "server_shutdown",
    "relay_error",
    "browser_closed",
    "idle_timeout",
    "upstream_unavailable",
    "upstream_closed",
    "service_restart",
}


def test_end_reasons_keep_the_strings_stored_today() -> None:
    assert {r.value for r in EndReason} == STORED
    assert EndReason.VOICEMAIL_LEFT == "voicemail_left"  # compares as its string
    assert f"{EndReason.TIME_LIMIT}" == str(EndReason.TIME_LIMIT) == "time_limit"
    assert set(VOICEMAIL_REASONS) == {"voicemail_left", "voicemail_timeout"}
    assert set(REST_HANGUP_REASONS) == {
        "voicemail_left",
        "voicemail_timeout",
        "time_limit",
        "assistant_hung_up",
    }
    assert set(NOT_SUMMARISED) == {"handed_over", "call_sid_mismatch"}


def test_end_sets_the_end_once_and_returns_the_one_that_stands() -> None:
    bridge, _ = make()
    first = bridge.end(EndReason.SERVER_SHUTDOWN)
    assert first == EndCall(EndReason.SERVER_SHUTDOWN, deliberate=False)
    assert bridge.ended is first
    assert bridge.end(EndReason.CALLER_HUNG_UP, deliberate=True) is first
    assert bridge.ended is first


def test_a_shutdown_after_the_hang_up_does_not_relabel_it() -> None:
    bridge, _ = make()
    outs = bridge.on_twilio({"event": "stop", "streamSid": SID}, 1.0)
    assert outs == [EndCall(EndReason.CALLER_HUNG_UP, deliberate=True)]
    assert bridge.end(EndReason.SERVER_SHUTDOWN) == outs[0]
    assert bridge.on_twilio({"event": "stop", "streamSid": SID}, 1.1) == []  # no second end


def test_twilio_closing_without_a_stop_ends_the_call() -> None:
    bridge, _ = make()
    assert bridge.on_twilio_closed() == EndCall(EndReason.TWILIO_CLOSED, deliberate=True)
    assert bridge.ended == EndCall(EndReason.TWILIO_CLOSED, deliberate=True)


def test_twilio_closing_after_a_stop_keeps_the_stop() -> None:
    bridge, _ = make()
    bridge.on_twilio({"event": "stop", "streamSid": SID}, 1.0)
    assert bridge.on_twilio_closed().reason == EndReason.CALLER_HUNG_UP


def test_twilio_closing_after_a_handover_is_the_move() -> None:
    bridge, _ = make()
    assert bridge.hand_over(1.0) is not None
    assert bridge.on_twilio_closed() == EndCall(EndReason.HANDED_OVER, deliberate=False)


def test_bad_media_is_counted_and_not_forwarded() -> None:
    bridge, _ = make()
    good = {"event": "media", "streamSid": SID, "media": {"payload": audio(20)}}
    assert len(bridge.on_twilio(good, 0.1)) == 1
    for payload in ('"}, "x": {"', 42, None):
        bad = {"event": "media", "streamSid": SID, "media": {"payload": payload}}
        assert bridge.on_twilio(bad, 0.2) == []
    assert bridge.on_twilio({"event": "start", "start": {}}, 0.3) == []  # a repeated start
    assert bridge.bad_media == 4
