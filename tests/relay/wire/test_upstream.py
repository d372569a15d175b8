"""relay.wire.upstream: the OpenAI client side over a real loopback socket, against a scripted
server.

The server is a thread with a plain socket: it answers the upgrade, writes the frames a test
gives it, and records every byte the client sends until the client closes.
"""

from __future__ import annotations

import io
import socket
import threading

import pytest

from relay.wire.codec import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    accept_key,
    close_payload,
    encode_frame,
    encode_header,
    read_frame,
)
from relay.wire.upstream import RealtimeSocket, UpstreamError, connect, realtime_url
from tests.relay.hub_peer import CEILING, HubRecorder


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    return encode_header(opcode, len(payload), fin=fin) + payload


class ScriptedServer:
    def __init__(self, frames: bytes = b"", status: str = "101 Switching Protocols", accept=None):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frames, self.status, self.accept = frames, status, accept
        self.request = b""
        self.received = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime?model=m"

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while b"\r\n\r\n" not in self.request:
                self.request += conn.recv(4096)
            key = next(
                line.split(":", 1)[1].strip()
                for line in self.request.decode("latin-1").split("\r\n")
                if line.lower().startswith("sec-websocket-key:")
            )
            accept = self.accept if self.accept is not None else accept_key(key)
            conn.sendall(
                f"HTTP/1.1 {self.status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode("latin-1")
                + self.frames
            )
            while chunk := conn.recv(65536):
                self.received += chunk
        self.listener.close()

    def client_frames(self) -> list[tuple[int, bytes]]:
        """What the client sent, unmasked (every client frame must be masked)."""
        self.thread.join(5)
        read, out = io.BytesIO(self.received).read, []
        while True:
            try:
                out.append(read_frame(read, 1 << 20, masked=True)[1:])
            except EOFError:
                return out


def test_handshake_sends_the_bearer_key_and_checks_the_accept():
    server = ScriptedServer(server_frame(OP_TEXT, b'{"type":"session.created"}'))
    up = connect(server.url, "sk-test")
    assert up.receive_raw() == (OP_TEXT, b'{"type":"session.created"}')
    up.close()
    head = server.request.decode("latin-1")
    assert head.startswith("GET /v1/realtime?model=m HTTP/1.1\r\n")
    assert "Authorization: Bearer sk-test\r\n" in head and "OpenAI-Beta" not in head
    assert server.client_frames() == [(OP_CLOSE, close_payload(1000))]


def test_a_refused_upgrade_or_a_wrong_accept_is_an_upstream_error():
    with pytest.raises(UpstreamError) as err:
        connect(ScriptedServer(status="401 Unauthorized").url, "sk-bad")
    assert err.value.status == 401
    with pytest.raises(UpstreamError, match="Sec-WebSocket-Accept"):
        connect(ScriptedServer(accept="d3Jvbmc=").url, "sk-test")


def test_a_handshake_that_fails_releases_the_socket_at_once(monkeypatch):
    # A server that takes the upgrade request and never answers. The client gives up; the
    # server must see the connection end while the error (whose traceback holds the
    # handshake's reader, which holds the socket open) is still alive: an OpenAI session
    # left open like that would outlive the call it was for.
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            conn.settimeout(5)  # a ceiling for a broken client, not a measurement
            seen.append(conn.recv(1))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"ws://127.0.0.1:{listener.getsockname()[1]}/v1/realtime"
    made: list[socket.socket] = []
    real = socket.create_connection

    def create_connection(*args, **kwargs) -> socket.socket:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(socket, "create_connection", create_connection)
    with pytest.raises(UpstreamError, match="handshake failed") as err:
        connect(url, "sk-test", timeout=0.3)
    thread.join(6)
    assert seen == [b""]  # EOF, not a timeout
    assert err.value.__traceback__ is not None
    assert made[0].fileno() == -1  # the descriptor itself is closed, not left to the GC
    listener.close()


def test_fragments_are_joined_pings_answered_and_the_server_close_echoed():
    frames = (
        server_frame(OP_TEXT, b'{"type":', fin=False)
        + server_frame(OP_PING, b"p1")
        + server_frame(OP_CONT, b'"x"}')
        + server_frame(OP_BINARY, b"\x00")
        + server_frame(OP_CLOSE, close_payload(4000, "done"))
    )
    server = ScriptedServer(frames)
    up = connect(server.url, "sk-test")
    assert up.receive_raw() == (OP_TEXT, b'{"type":"x"}')
    assert up.receive_raw() == (OP_BINARY, b"\x00")
    assert up.receive_raw() is None
    assert (up.close_code, up.close_reason, up.closed) == (4000, "done", True)
    assert server.client_frames() == [(OP_PONG, b"p1"), (OP_CLOSE, close_payload(4000))]


@pytest.mark.parametrize(
    "frames, code",
    [
        (encode_frame(OP_TEXT, b"masked", mask=b"abcd"), 1002),  # servers must not mask
        (server_frame(OP_TEXT, b"\xff"), 1007),
        (server_frame(OP_CONT, b"x"), 1002),
        (server_frame(OP_CLOSE, b"\x03\xed"), 1002),  # close code 1005 is never sent
    ],
)
def test_a_server_breaking_the_protocol_gets_a_close_frame_naming_it(frames, code):
    server = ScriptedServer(frames)
    up = connect(server.url, "sk-test")
    assert up.receive_raw() is None and up.closed
    [(op, body)] = server.client_frames()
    assert op == OP_CLOSE and int.from_bytes(body[:2], "big") == code


def test_sends_are_masked_text_frames_and_send_many_is_one_write():
    server = ScriptedServer()
    up = connect(server.url, "sk-test")
    up.send('{"type":"a"}')
    up.send_many([b'{"type":"b"}', b'{"type":"c"}'])
    up.close()
    assert server.client_frames() == [
        (OP_TEXT, b'{"type":"a"}'),
        (OP_TEXT, b'{"type":"b"}'),
        (OP_TEXT, b'{"type":"c"}'),
        (OP_CLOSE, close_payload(1000)),
    ]
    with pytest.raises(OSError):
        up.send("late")


def test_one_receive_shape_for_every_session():
    frames = server_frame(OP_TEXT, b"one") + server_frame(OP_TEXT, b"two")
    up: RealtimeSocket = connect(ScriptedServer(frames).url, "sk-test")
    assert up.receive_raw() == (OP_TEXT, b"one")
    assert up.receive_raw() == (OP_TEXT, b"two")
    up.close()
    assert up.receive_raw() is None
    # The old aliases (recv: payload only, recv_frame) are gone: both loops use receive_raw.
    assert not hasattr(up, "recv") and not hasattr(up, "recv_frame")


def test_realtime_url_adds_the_model():
    assert realtime_url("wss://h/v1/realtime", "gpt x") == "wss://h/v1/realtime?model=gpt%20x"
    assert realtime_url("wss://h/r?a=1", "m") == "wss://h/r?a=1&model=m"


# ==== receiving from the hub (start_hub) =======================================================
class HubUpstream(HubRecorder):
    """A RealtimeSocket over a gevent socket pair (as ``connect`` makes one in the relay, where
    sockets are gevent's), whose handshake reader held ``early``; the peer is the server."""

    def __init__(self, early: bytes = b""):
        import gevent.socket

        super().__init__()
        self.ours, self.server = gevent.socket.socketpair()
        self.up = RealtimeSocket(self.ours, io.BufferedReader(io.BytesIO(early)))

    def hub_socket(self) -> RealtimeSocket:
        return self.up

    def client_frames(self, count: int) -> list[tuple[int, bytes]]:
        """What the client sent, unmasked (every client frame must be masked)."""
        import gevent

        reader = self.server.makefile("rb")
        with gevent.Timeout(CEILING):
            return [read_frame(reader.read, 1 << 22, masked=True)[1:] for _ in range(count)]

    def close(self) -> None:
        self.up.close()
        self.server.close()


def test_hub_mode_waits_for_the_handshake_reader_then_delivers_events():
    peer = HubUpstream(early=server_frame(OP_TEXT, b'{"type":"session.created"}'))
    try:
        assert peer.start() is False  # the handshake's reader still holds a frame
        assert peer.up.receive_raw() == (OP_TEXT, b'{"type":"session.created"}')
        assert peer.start() is True
        assert peer.start() is False  # already running
        peer.server.sendall(
            server_frame(OP_TEXT, b'{"type":', fin=False)
            + server_frame(OP_PING, b"p1")
            + server_frame(OP_CONT, b'"x"}')
            + server_frame(OP_BINARY, b"\x00")
            + server_frame(OP_CLOSE, close_payload(4000, "done"))
        )
        assert peer.ended.wait(CEILING)
        assert peer.messages == [(OP_TEXT, b'{"type":"x"}'), (OP_BINARY, b"\x00")]
        assert (peer.up.close_code, peer.up.close_reason, peer.up.closed) == (4000, "done", True)
        peer.up.close()  # a second close: no second on_end, no second close frame
        assert peer.ends == 1
        assert peer.client_frames(2) == [(OP_PONG, b"p1"), (OP_CLOSE, close_payload(4000))]
    finally:
        peer.close()


def test_the_tls_shaped_socket_keeps_its_reader_greenlet():
    server = ScriptedServer(server_frame(OP_TEXT, b"one"))
    up = connect(server.url, "sk-test")  # outside the relay: a stdlib socket, not gevent's
    assert up.receive_raw() == (OP_TEXT, b"one")
    assert up.start_hub(print, print) is False
    up.close()


@pytest.mark.parametrize(
    "frame, code",
    [
        (b"\x81\x7f" + (17 << 20).to_bytes(8, "big"), 1009),  # over MAX_EVENT_BYTES, unsent
        (encode_frame(OP_TEXT, b"masked", mask=b"abcd"), 1002),
        (server_frame(OP_TEXT, b"\xff"), 1007),
    ],
    ids=["oversized", "masked", "invalid-utf8"],
)
def test_hub_mode_protocol_errors_are_closed_with_their_code_and_end_once(frame, code):
    peer = HubUpstream(early=server_frame(OP_TEXT, b"first"))
    try:
        assert peer.up.receive_raw() == (OP_TEXT, b"first")
        assert peer.start()
        peer.server.sendall(server_frame(OP_TEXT, b"ok") + frame + server_frame(OP_TEXT, b"no"))
        assert peer.ended.wait(CEILING)
        assert peer.messages == [(OP_TEXT, b"ok")] and peer.up.closed
        [(op, body)] = peer.client_frames(1)
        assert op == OP_CLOSE and int.from_bytes(body[:2], "big") == code
        assert peer.ends == 1
    finally:
        peer.close()


def test_hub_mode_sends_from_the_hub_arrive_in_order_and_close_flushes_them():
    import gevent

    peer = HubUpstream(early=server_frame(OP_TEXT, b"first"))
    try:
        assert peer.up.receive_raw() == (OP_TEXT, b"first")
        events = [b'{"type":"input_audio_buffer.append","audio":"%06d"}' % i for i in range(10000)]

        def answer(opcode: int, payload: bytes) -> None:  # in the hub: must not block
            peer.on_message(opcode, payload)
            peer.up.send_many(events[:5000])  # with the rest, 0.5 MB: more than the kernel takes
            for event in events[5000:]:
                peer.up.send(event)

        assert peer.up.start_hub(answer, peer.on_end)
        peer.server.sendall(server_frame(OP_TEXT, b'{"type":"session.updated"}'))
        reader = gevent.spawn(peer.client_frames, len(events) + 1)
        with gevent.Timeout(CEILING):
            while not peer.messages:
                gevent.sleep(0.001)
        peer.up.close()  # from this greenlet: what was queued goes out before the close frame
        assert peer.ends == 1  # close() ends the hub reader too
        got = reader.get(timeout=CEILING)
        assert got[:-1] == [(OP_TEXT, e) for e in events]
        assert got[-1] == (OP_CLOSE, close_payload(1000))
    finally:
        peer.close()


def test_hub_mode_server_hang_up_ends_once():
    peer = HubUpstream(early=server_frame(OP_TEXT, b"first"))
    try:
        assert peer.up.receive_raw() == (OP_TEXT, b"first")
        assert peer.start()
        peer.server.sendall(server_frame(OP_TEXT, b"half")[:3])
        peer.server.shutdown(1)  # SHUT_WR: EOF mid-frame
        assert peer.ended.wait(CEILING)
        assert peer.up.closed and peer.messages == [] and peer.ends == 1
        with pytest.raises(OSError):
            peer.up.send("late")
    finally:
        peer.close()
