"""The GPT-Live simulator speaks, listens and ends like the service, over a real WebSocket to a
real simulator process: greeting and instructions spoken, caller speech transcribed and answered,
the model yielding when the caller talks over it, fixtures, and every way a session ends."""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Iterator

import pytest
import websocket

from sandbox.live_sim.audio import PCM24K, PCMA, PCMU, LiveFormat
from sandbox.realtime_sim.audio import Vad
from tests.sandbox.live_client import (
    connect,
    control,
    newest_session,
    recv,
    running_sim,
    send,
    speak,
    start,
    text_of,
    until,
)

GREETING = "Hi there, GateFrames here. How can I help?"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sim(tmp_path_factory.mktemp("live-speech")) as url:
        yield url


@pytest.fixture
def ws(sim: str) -> Iterator[websocket.WebSocket]:
    control(sim, "/_sandbox/reset")
    conn = connect(sim)
    yield conn
    conn.close()


def quiet(ws: websocket.WebSocket, seconds: float = 0.4) -> list[dict]:
    """Every event until none has come for ``seconds``."""
    seen = []
    ws.settimeout(seconds)
    try:
        while True:
            seen.append(recv(ws))
    except websocket.WebSocketTimeoutException:
        return seen
    finally:
        ws.settimeout(10)


def audio_of(events: list[dict]) -> bytes:
    return b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "session.output_audio.delta"
    )


def test_a_greeting_instruction_is_spoken_word_for_word_in_the_session_format(
    sim: str, ws: websocket.WebSocket
) -> None:
    start(ws)
    send(ws, type="session.instructions.append", event_id="evt_greet", delegation_id=None,
         content=f'Greet the caller now by saying "{GREETING}" Then listen.')  # fmt: skip
    appended = recv(ws)
    assert appended["type"] == "session.instructions.appended"
    assert appended["client_event_id"] == "evt_greet"
    events = quiet(ws)
    assert text_of(events, "session.output_transcript.delta") == GREETING
    pieces = [e["delta"] for e in events if e["type"] == "session.output_transcript.delta"]
    assert len(pieces) > 1 and all(p.startswith(" ") for p in pieces[1:])  # whole words
    audio = audio_of(events)
    assert len(audio) == 60 * len(GREETING) * 8  # μ-law, 8 bytes per ms, 60 ms a character
    assert max(abs(s) for s in PCMU.samples(audio)) > 3000  # speech-like energy, not silence
    deltas = [e for e in events if e["type"] == "session.output_audio.delta"]
    assert all(set(e) == {"type", "delta"} for e in deltas)  # no ids, no timestamps
    ends = [(e["start_ms"], e["end_ms"]) for e in events
            if e["type"] == "session.output_transcript.delta"]  # fmt: skip
    assert ends[0][0] == 0 and all(a[1] == b[0] for a, b in itertools.pairwise(ends))
    [turn] = newest_session(sim)["turns"]
    assert (turn["reason"], turn["status"], turn["spoken"]) == ("instructions", "done", GREETING)


def test_an_unquoted_greeting_and_commentary_are_spoken_thinking_is_not(
    ws: websocket.WebSocket,
) -> None:
    start(ws, audio={"format": {"type": "audio/pcma", "rate": 8000}})
    send(ws, type="session.instructions.append", content="Greet the caller.", delegation_id=None)
    events = quiet(ws)
    assert "GateFrames" in text_of(events, "session.output_transcript.delta")
    assert max(abs(s) for s in PCMA.samples(audio_of(events))) > 3000
    send(ws, type="session.thinking.append", content="Caller is John.", delegation_id=None)
    assert [e["type"] for e in quiet(ws)] == ["session.thinking.appended"]
    send(ws, type="session.commentary.append", content="Your gate ships Monday.",
         delegation_id=None)  # fmt: skip
    events = quiet(ws)
    assert events[0]["type"] == "session.commentary.appended"
    assert text_of(events, "session.output_transcript.delta") == "Your gate ships Monday."


def test_caller_speech_is_transcribed_with_times_and_answered(
    sim: str, ws: websocket.WebSocket
) -> None:
    start(ws, delegation=None)
    said = "When does my order ship?"
    assert control(sim, "/_sandbox/caller_says", text=said)[0] == 200
    speak(ws, ms=1200)
    events = quiet(ws)
    words = [e for e in events if e["type"] == "session.input_transcript.delta"]
    assert "".join(e["delta"] for e in words) == said and len(words) == 5
    assert words[0]["start_ms"] >= 150 and words[-1]["end_ms"] <= 1450
    assert all(a["end_ms"] == b["start_ms"] for a, b in itertools.pairwise(words))
    reply = text_of(events, "session.output_transcript.delta")
    assert reply == "This is the GateFrames assistant. How can I help with your gate?"
    first_reply = next(e for e in events if e["type"] == "session.output_transcript.delta")
    assert first_reply["start_ms"] >= words[-1]["end_ms"]
    record = newest_session(sim)
    assert record["caller_turns"] == [{"text": said, "start_ms": words[0]["start_ms"],
                                       "end_ms": words[-1]["end_ms"]}]  # fmt: skip
    # Unscripted speech is transcribed by its length.
    speak(ws, ms=600)
    events = quiet(ws)
    assert text_of(events, "session.input_transcript.delta").startswith("(caller spoke 0.")


def test_muted_input_is_not_heard(sim: str, ws: websocket.WebSocket) -> None:
    start(ws, delegation=None)
    send(ws, type="session.input_audio.mute")
    assert recv(ws)["type"] == "session.input_audio.muted"
    speak(ws, ms=800)
    assert quiet(ws) == []
    assert newest_session(sim)["speech"] == []


def test_the_model_yields_when_the_caller_talks_over_it(sim: str, ws: websocket.WebSocket) -> None:
    start(ws, delegation=None)
    long = "word " * 80
    send(ws, type="session.instructions.append", delegation_id=None,
         content=f'Say "{long.strip()}"')  # fmt: skip
    until(ws, "session.output_audio.delta")
    control(sim, "/_sandbox/caller_says", text="sorry to interrupt")
    speak(ws, ms=800, before_ms=0)
    events = quiet(ws, 0.6)
    transcript = [e for e in events if e["type"] == "session.input_transcript.delta"]
    assert "".join(e["delta"] for e in transcript) == "sorry to interrupt"
    turns = newest_session(sim)["turns"]
    interrupted = turns[0]
    assert interrupted["status"] == "yielded"
    assert 0 < len(interrupted["spoken"]) < len(long.strip())
    assert long.startswith(interrupted["spoken"])
    # After the caller's first word no more of the interrupted turn was sent: everything the
    # model said after it is the new reply.
    first_word = events.index(transcript[0])
    after = text_of(events[first_word:], "session.output_transcript.delta")
    assert after == "This is the GateFrames assistant. How can I help with your gate?"
    assert [t["status"] for t in turns] == ["yielded", "done"]
    # Live has no truncate and no cancel: the Realtime events are unknown here.
    for kind in ("conversation.item.truncate", "response.cancel"):
        send(ws, type=kind)
        error = recv(ws)["error"]
        assert (error["code"], error["param"]) == ("invalid_value", "type")


def test_a_fixture_plays_in_the_session_format_and_mutes_input(
    sim: str, ws: websocket.WebSocket
) -> None:
    start(ws, delegation=None)
    clip = PCM24K.tone(1000, 440)  # one second of PCM16 at 24 kHz
    send(ws, type="session.output_audio.fixture.play", event_id="evt_fx",
         audio=base64.b64encode(clip).decode())  # fmt: skip
    playing = recv(ws)
    assert (playing["type"], playing["client_event_id"]) == (
        "session.output_audio.fixture.playing", "evt_fx")  # fmt: skip
    send(ws, type="session.instructions.append", content="Say hi.", delegation_id=None)
    speak(ws, ms=600, before_ms=0)  # dropped while the fixture plays
    played, seen = until(ws, "session.output_audio.fixture.played")
    assert played["client_event_id"] == "evt_fx"
    errors = [e["error"]["code"] for e in seen if e["type"] == "error"]
    assert errors == ["fixture_active"]
    assert len(audio_of(seen)) == 8000  # one second of μ-law
    assert not [e for e in seen if e["type"].endswith("transcript.delta")]
    send(ws, type="session.output_audio.fixture.play", audio=base64.b64encode(b"\x00").decode())
    assert recv(ws)["error"]["param"] == "audio"  # odd length: not PCM16


def test_session_close_ends_with_close_requested_then_the_socket_closes(
    sim: str, ws: websocket.WebSocket
) -> None:
    session = start(ws)
    send(ws, type="session.close", event_id="evt_close")
    closed = recv(ws)
    assert closed["type"] == "session.closed" and closed["reason"] == "close_requested"
    assert closed["client_event_id"] == "evt_close"
    assert closed["session"]["id"] == session["id"] and closed["usage"]["seconds"] >= 0
    opcode, frame = ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1000
    record = newest_session(sim)
    assert record["closed_reason"] == "close_requested"


@pytest.mark.parametrize("reason", ["expired", "content", "remote_hangup"])
def test_server_side_ends_send_their_reason(sim: str, ws: websocket.WebSocket, reason: str) -> None:
    session = start(ws)
    send(ws, type="session.instructions.append", content='Say "' + "long " * 50 + '"',
         delegation_id=None)  # fmt: skip
    until(ws, "session.output_audio.delta")
    status, body = control(sim, "/_sandbox/end", reason=reason, session=session["id"])
    assert (status, body) == (200, {"sessions": [session["id"]]})
    closed, _ = until(ws, "session.closed")
    assert closed["reason"] == reason
    opcode, _ = ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert newest_session(sim)["turns"][0]["status"] == "closed"


def test_a_session_expires_at_its_lifetime(sim: str) -> None:
    control(sim, "/_sandbox/settings", lifetime_s="1.0")
    try:
        conn = connect(sim)
        session = start(conn)
        assert session["expires_at"] - time.time() <= 1.5
        closed, _ = until(conn, "session.closed")
        assert closed["reason"] == "expired"
        conn.close()
    finally:
        control(sim, "/_sandbox/reset")


def test_a_lost_connection_ends_with_no_event(sim: str, ws: websocket.WebSocket) -> None:
    start(ws)
    control(sim, "/_sandbox/end", reason="connection_lost")
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            assert recv(ws)["type"] != "session.closed"
    assert newest_session(sim)["open"] is False


def test_faults_refuse_connects_and_drop_connections(sim: str) -> None:
    control(sim, "/_sandbox/faults", reject_connects=1)
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        connect(sim)
    assert err.value.status_code == 503
    control(sim, "/_sandbox/faults", drop_after_ms=200)
    try:
        conn = connect(sim)
        start(conn)
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            for _ in range(100):
                recv(conn)
    finally:
        control(sim, "/_sandbox/reset")


def test_injected_errors_and_usage_reports(sim: str, ws: websocket.WebSocket) -> None:
    start(ws)
    status, _ = control(sim, "/_sandbox/error", code="content_filter",
                        message="Speech was cut by moderation.")  # fmt: skip
    assert status == 200
    error = recv(ws)
    assert error["error"]["code"] == "content_filter" and error["error"]["type"] == "server_error"
    control(sim, "/_sandbox/usage")
    usage = recv(ws)
    assert usage["type"] == "session.usage.updated" and usage["usage"]["seconds"] >= 0
    assert 0 <= usage["context_window"]["usage_ratio"] < 1
    control(sim, "/_sandbox/settings", usage_interval_s="0.1")
    conn = connect(sim)
    try:
        start(conn)
        assert until(conn, "session.usage.updated")[0]["usage"]["seconds"] >= 0
    finally:
        conn.close()
        control(sim, "/_sandbox/reset")


def test_inject_sends_a_frame_verbatim_for_attack_tests(sim: str, ws: websocket.WebSocket) -> None:
    session = start(ws)
    for raw in ('{"type": "session.new_thing", "x": 1}', "{nope"):
        status, body = control(sim, "/_sandbox/inject", raw=raw, session=session["id"])
        assert (status, body) == (200, {"sessions": [session["id"]]})
        assert ws.recv() == raw  # as sent: not an event the SDK knows, or not JSON at all
    assert newest_session(sim)["injected"] == ['{"type": "session.new_thing", "x": 1}', "{nope"]
    assert control(sim, "/_sandbox/inject", raw="x", session="sess_nope")[0] == 404
    send(ws, type="session.input_audio.mute")
    assert recv(ws)["type"] == "session.input_audio.muted"  # the session goes on


@pytest.mark.parametrize(
    "fmt",
    [PCMU, PCMA, PCM24K, LiveFormat("audio/pcm", 16000)],
    ids=["pcmu", "pcma", "pcm24k", "pcm16k"],
)
def test_caller_speech_is_found_in_every_session_format(fmt: LiveFormat) -> None:
    vad = Vad()
    events = []
    for chunk in [fmt.tone(20, 0, 0)] * 50 + [fmt.tone(20, 300)] * 50 + [fmt.tone(20, 0, 0)] * 50:
        events += vad.feed(fmt, chunk)
    (start_kind, start_ms), (stop_kind, stop_ms) = events
    assert start_kind == "started" and abs(start_ms - (1000 - vad.prefix_ms)) <= 20
    assert stop_kind == "stopped" and abs(stop_ms - (2000 + vad.silence_ms)) <= 20
