"""``python -m sandbox.live_sim --echo`` (relay tests and benchmarks), over a real WebSocket to
a real simulator process: input audio comes straight back as output audio, a benchmark's
timestamped frame is stamped, and its barge-in frame is answered as a caller transcript."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator

import pytest
import websocket

from sandbox import services
from sandbox.realtime_sim.session import BARGE_IN_MAGIC, STAMP_MAGIC
from tests.sandbox.live_client import KEY, connect, control, newest_session, recv, send, start
from tests.support import base_env, free_port, start_service


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    service = services.live_sim(port, KEY, echo=True, name="live-sim-echo")
    proc = start_service(service, tmp_path_factory.mktemp("live-echo"), base_env())
    try:
        yield f"ws://127.0.0.1:{port}/v1/live/sessions"
    finally:
        proc.stop()


def test_echo_returns_audio_stamps_frames_and_answers_barge_in(sim: str) -> None:
    conn = connect(sim)
    with contextlib.closing(conn):
        start(conn)
        chunk = bytes(range(160))
        send(conn, type="session.input_audio.append", audio=base64.b64encode(chunk).decode())
        echoed = recv(conn)
        assert echoed["type"] == "session.output_audio.delta"
        assert base64.b64decode(echoed["delta"]) == chunk
        stamped = STAMP_MAGIC + bytes(8) + bytes(8) + b"\xff" * 140
        send(conn, type="session.input_audio.append", audio=base64.b64encode(stamped).decode())
        back = base64.b64decode(recv(conn)["delta"])
        assert back[:12] == stamped[:12] and back[20:] == stamped[20:]
        assert int.from_bytes(back[12:20], "big") > 0  # our receive time
        barge = BARGE_IN_MAGIC + b"\xff" * 156
        send(conn, type="session.input_audio.append", audio=base64.b64encode(barge).decode())
        heard = recv(conn)
        assert heard["type"] == "session.input_transcript.delta"
        assert (heard["start_ms"], heard["end_ms"]) == (40, 60)
        assert len(newest_session(sim)["barge_in_sent_ns"]) == 1
    control(sim, "/_sandbox/reset")


def test_echo_still_checks_the_protocol(sim: str) -> None:
    conn = connect(sim)
    with contextlib.closing(conn):
        send(conn, type="session.input_audio.append", audio="")
        assert recv(conn)["error"]["code"] == "session_not_started"
        with pytest.raises(websocket.WebSocketTimeoutException):
            conn.settimeout(0.3)
            recv(conn)
