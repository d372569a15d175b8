"""Both sessions return one summary from ``run()`` and the server records it in one place:
in-process, with socket doubles (no relay process, no network, no Redis)."""

from __future__ import annotations

import base64
import logging
import os
from typing import Any

import gevent
import gevent.event
import orjson
import pytest
from prometheus_client import REGISTRY

from common.config import load_config
from common.end_reasons import EndReason
from relay import session_summary
from relay.browser.session import BrowserSession
from relay.call import session as twilio_session
from relay.call.session import TwilioCall
from relay.session_summary import SessionSummary, record
from relay.wire.codec import OP_TEXT
from relay.wire.hub_io import PeerNotReading

CALL_SID = "CA" + "4" * 32
STREAM_SID = "MZ" + "5" * 32
MEDIA = base64.b64encode(b"\x7f" * 160).decode()


class Socket:
    """A socket double: ``receive_raw`` hands out ``script`` in order, then waits until the
    socket is closed (a live peer that went quiet) and returns None."""

    def __init__(self, script: list[bytes] = (), *, close_after: bool = False):
        self.script = list(script)
        self.close_after = close_after  # the peer closes once the script is read
        self.sent: list[Any] = []
        self._closed = gevent.event.Event()
        self.closed = False
        self.close_code: int | None = None
        self.peer_close_code: int | None = None
        self.close_reason = ""
        self.closed_with: tuple[int, str] | None = None

    def receive_raw(self) -> tuple[int, bytes] | None:
        if self.script:
            gevent.sleep(0)
            return OP_TEXT, self.script.pop(0)
        if not self.close_after:
            self._closed.wait()
        return None

    def send(self, message: str | bytes) -> None:
        self.sent.append(message)

    def send_many(self, messages: list) -> None:
        self.sent.extend(messages)

    def send_frame(self, data: bytes, opcode: int = OP_TEXT) -> None:
        self.sent.append(data)

    def close(self, code: int = 1000, reason: str | bytes = "") -> None:
        if self.closed_with is None:
            self.closed_with = (code, str(reason))
        self.closed = True
        self._closed.set()

    def linger(self) -> None:
        pass


def media(payload: Any) -> bytes:
    return orjson.dumps({"event": "media", "streamSid": STREAM_SID, "media": {"payload": payload}})


START = orjson.dumps(
    {
        "event": "start",
        "streamSid": STREAM_SID,
        "start": {"streamSid": STREAM_SID, "callSid": CALL_SID, "customParameters": {}},
    }
)
STOP = orjson.dumps({"event": "stop", "streamSid": STREAM_SID})


@pytest.fixture
def cfg():
    return load_config({"ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()})


@pytest.fixture
def recorded_ends(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """What the call would write under the call-end key (no Redis here)."""
    got: list[tuple[str, str]] = []
    monkeypatch.setattr(twilio_session, "record_end", lambda sid, reason: got.append((sid, reason)))
    return got


def call(cfg, twilio: Socket, openai: Socket) -> TwilioCall:
    return TwilioCall(cfg, twilio, lambda: openai, call_sid=CALL_SID)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- phone ----------------------------------------------------------------------------------
def test_a_call_returns_its_summary(cfg, recorded_ends: list) -> None:
    twilio = Socket([START, media(MEDIA), media("not base64!"), b"not json", STOP])
    openai = Socket()
    summary = call(cfg, twilio, openai).run()
    assert isinstance(summary, SessionSummary)
    assert summary.kind == "phone" and summary.surface == "twilio"
    assert summary.session_id == CALL_SID and summary.stream_sid == STREAM_SID
    assert summary.reason is EndReason.CALLER_HUNG_UP and summary.deliberate
    assert summary.close_code == 1000 and twilio.closed_with == (1000, "caller_hung_up")
    assert summary.malformed == 1  # the frame that was not JSON
    assert summary.bad_media == 1  # the payload that was not base64: counted, not forwarded
    # session.update, the greeting item, response.create and the one good media frame
    assert summary.frames_in == len(openai.sent) == 4
    assert summary.transcript_lines == summary.caller_lines == 0
    assert recorded_ends == [(CALL_SID, EndReason.CALLER_HUNG_UP)]
    assert openai.closed


def test_stop_ends_the_call_through_the_bridge(cfg, recorded_ends: list) -> None:
    twilio, openai = Socket([START]), Socket()
    running = call(cfg, twilio, openai)
    greenlet = gevent.spawn(running.run)
    gevent.sleep(0.05)
    running.stop(EndReason.SERVER_SHUTDOWN)
    summary = greenlet.get(timeout=5)
    assert summary.reason is EndReason.SERVER_SHUTDOWN and not summary.deliberate
    assert running.bridge.ended is not None
    assert running.bridge.ended.reason is EndReason.SERVER_SHUTDOWN
    assert recorded_ends == []  # not deliberate: the web process apologises
    running.stop(EndReason.RELAY_ERROR)  # a late stop changes nothing
    assert running.bridge.ended.reason is EndReason.SERVER_SHUTDOWN


def test_twilio_closing_without_a_stop_is_twilio_closed(cfg, recorded_ends: list) -> None:
    summary = call(cfg, Socket([START], close_after=True), Socket()).run()
    assert summary.reason is EndReason.TWILIO_CLOSED and summary.deliberate


class StalledTwilio(Socket):
    """Twilio's socket once it stopped reading: every write fails as the Outbox fails it."""

    def send(self, message: str | bytes) -> None:
        raise PeerNotReading("peer not reading: 8388709 bytes waiting")

    send_many = send  # type: ignore[assignment]


class LateOpenAI(Socket):
    """OpenAI's audio arrives after Twilio's ``start`` (the stream id is known by then)."""

    def receive_raw(self) -> tuple[int, bytes] | None:
        gevent.sleep(0.05)
        return super().receive_raw()


def test_twilio_not_reading_ends_the_call_as_stalled(
    cfg, recorded_ends: list, caplog: pytest.LogCaptureFixture
) -> None:
    delta = orjson.dumps(
        {
            "type": "response.output_audio.delta",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": MEDIA,
            "event_id": "event_1",
        }
    )
    twilio, openai = StalledTwilio([START]), LateOpenAI([delta, delta])
    with caplog.at_level(logging.WARNING, logger="relay.call.session"):
        summary = call(cfg, twilio, openai).run()
    assert summary.reason is EndReason.TWILIO_STALLED and not summary.deliberate
    assert recorded_ends == []  # a failure: the web process apologises on the call
    assert twilio.closed and openai.closed
    [line] = [r for r in caplog.records if "stopped reading" in r.getMessage()]
    assert line.call_sid == CALL_SID and line.reason == "twilio_stalled"


# -- browser --------------------------------------------------------------------------------
def browser(ws: Socket, upstream: Socket, **kw: Any) -> BrowserSession:
    return BrowserSession(
        ws,  # type: ignore[arg-type]
        lambda: upstream,
        time_limit_s=kw.get("time_limit_s", 60.0),
        idle_s=60.0,
        max_queue_bytes=1 << 20,
        client_ip="203.0.113.9",
    )


def test_a_browser_session_returns_its_summary() -> None:
    ws = Socket([b'{"type":"one"}', b'{"type":"two"}'], close_after=True)
    upstream = Socket()
    session = browser(ws, upstream)
    summary = session.run()
    assert summary is session.summary
    assert summary.kind == "browser" and summary.surface == "browser"
    assert summary.session_id == session.session_id and summary.client_ip == "203.0.113.9"
    assert summary.reason is EndReason.BROWSER_CLOSED and summary.close_code == 1000
    assert not summary.deliberate and summary.duration_s == summary.elapsed_s
    assert summary.frames_in == 2 and upstream.sent == [b'{"type":"one"}', b'{"type":"two"}']
    assert ws.closed_with == (1000, "browser_closed") and upstream.closed


def test_the_first_browser_end_stands() -> None:
    session = browser(Socket(), Socket(), time_limit_s=0.05)
    summary = session.run()  # the time cap ends it; the readers' own ends come later
    assert summary.reason is EndReason.TIME_LIMIT and summary.close_code == 4000
    session.end(session.core.browser_closed())
    assert session.core.ended is not None and session.core.ended.reason is EndReason.TIME_LIMIT


# -- the recorder -----------------------------------------------------------------------------
def phone(**kw: Any) -> SessionSummary:
    base: dict[str, Any] = {
        "kind": "phone",
        "session_id": CALL_SID,
        "reason": EndReason.VOICEMAIL_LEFT,
        "deliberate": True,
        "close_code": 1000,
        "duration_s": 3.0,
        "elapsed_s": 12.5,
        "frames_in": 7,
        "frames_out": 9,
        "transcript_lines": 3,
        "caller_lines": 1,
        "barge_ins": 2,
        "stream_sid": STREAM_SID,
    }
    return SessionSummary(**{**base, **kw})


def test_record_counts_a_call_and_writes_its_end_line(caplog: pytest.LogCaptureFixture) -> None:
    labels = {"surface": "twilio", "reason": "voicemail_left"}
    before = {
        "sessions": sample("relay_sessions_total", **labels),
        "in": sample("relay_frames_total", surface="twilio", direction="in"),
        "barge": sample("relay_barge_ins_total"),
    }
    with caplog.at_level(logging.INFO, logger="relay.call.session"):
        record(phone())
    assert sample("relay_sessions_total", **labels) == before["sessions"] + 1
    assert sample("relay_frames_total", surface="twilio", direction="in") == before["in"] + 7
    assert sample("relay_barge_ins_total") == before["barge"] + 2
    [line] = [r for r in caplog.records if r.getMessage().startswith("call ended")]
    assert line.name == "relay.call.session"
    assert line.getMessage() == (
        "call ended (deliberate) after 12.5 s: 3 transcript lines (1 caller, 2 assistant)"
    )
    assert (line.call_sid, line.stream_sid) == (CALL_SID, STREAM_SID)  # type: ignore[attr-defined]
    assert line.reason == line.outcome == "voicemail_left"  # type: ignore[attr-defined]


def test_the_end_line_names_frames_that_were_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="relay.call.session"):
        record(phone(reason=EndReason.UPSTREAM_LOST, deliberate=False, malformed=2, bad_media=1))
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("call ended")]
    assert line.startswith("call ended (upstream lost) after 12.5 s")
    assert line.endswith("; 2 malformed frames, 1 bad media")


def test_record_counts_a_browser_session(caplog: pytest.LogCaptureFixture) -> None:
    labels = {"surface": "browser", "reason": "upstream_closed"}
    before = sample("relay_sessions_total", **labels)
    policed = sample("relay_browser_events_policed_total")
    summary = SessionSummary(
        kind="browser",
        session_id="s1",
        reason="upstream_closed_1011",  # the wire's word: counted under upstream_closed
        deliberate=False,
        close_code=1011,
        duration_s=2.0,
        elapsed_s=2.0,
        frames_in=4,
        frames_out=5,
        policed=3,
        client_ip="203.0.113.9",
    )
    assert summary.label == EndReason.UPSTREAM_CLOSED
    with caplog.at_level(logging.INFO, logger="relay.browser.session"):
        record(summary)
    assert sample("relay_sessions_total", **labels) == before + 1
    assert sample("relay_browser_events_policed_total") == policed + 3
    [line] = [r for r in caplog.records if r.getMessage().startswith("browser session ended")]
    assert line.name == "relay.browser.session"
    assert line.getMessage() == (
        "browser session ended after 2.0 s (4 in, 5 out, 3 policed, close 1011)"
    )
    assert line.reason == "upstream_closed_1011"  # type: ignore[attr-defined]
    assert line.session_id == "s1" and line.client_ip == "203.0.113.9"  # type: ignore[attr-defined]


def test_every_kind_has_a_surface() -> None:
    assert session_summary.SURFACES == {"phone": "twilio", "browser": "browser"}
