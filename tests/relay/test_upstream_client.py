"""relay.upstream: the OpenAI client side over a real loopback socket, against a scripted server.

The server is a thread with a plain socket: it answers the upgrade, writes the frames a test
gives it, and records every byte the client sends until the client closes.
"""

from __future__ import annotations

import io
import socket
import threading

import pytest

from relay.codec import (
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
from relay.upstream import RealtimeSocket, UpstreamError, connect, realtime_url


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
