"""relay.wire.server_socket: FastWebSocket over a byte buffer, and over a real socket pair
under gevent.

The codec itself is tested in test_codec.py."""

from __future__ import annotations

import io
import os

import pytest
from geventwebsocket.websocket import Stream

from relay.wire.codec import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_payload,
    encode_header,
    parse_close,
    read_frame,
    unmask,
)
from relay.wire.server_socket import FastWebSocket
from tests.relay.hub_peer import CEILING, HubRecorder


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    mask = os.urandom(4)
    head = bytearray(encode_header(opcode, len(payload), fin=fin, mask=mask))
    head[0] |= rsv
    return bytes(head) + unmask(payload, mask)


class FakeHandler:
    class server:
        application = None


class Wire:
    """A FastWebSocket reading ``data`` and recording what it writes."""

    def __init__(self, data: bytes, max_bytes: int = 1 << 20):
        self.sent: list[bytes] = []
        stream = type("S", (), {"read": io.BytesIO(data).read, "write": self.sent.append})
        self.ws = FastWebSocket({}, stream, FakeHandler, max_bytes=max_bytes)

    def frames_sent(self) -> list[tuple[int, bytes]]:
        out = []
        for raw in self.sent:
            fin, op, payload = read_frame(io.BytesIO(raw).read, 1 << 30, masked=False)
            assert fin
            out.append((op, payload))
        return out


# ==== FastWebSocket ============================================================================
def test_text_and_binary_messages():
    wire = Wire(client_frame(OP_TEXT, "héllo".encode()) + client_frame(OP_BINARY, b"\x00\x01"))
    assert wire.ws.receive() == "héllo"
    assert wire.ws.receive_raw() == (OP_BINARY, b"\x00\x01")


def test_fragments_are_joined_and_pings_answered_between_them():
    data = (
        client_frame(OP_TEXT, b'{"a":', fin=False)
        + client_frame(OP_PING, b"are you there")
        + client_frame(OP_CONT, b"1}", fin=True)
    )
    wire = Wire(data)
    assert wire.ws.receive_raw() == (OP_TEXT, b'{"a":1}')
    assert wire.frames_sent() == [(OP_PONG, b"are you there")]


def test_fragmented_message_over_the_limit_closes_1009():
    data = client_frame(OP_TEXT, b"a" * 600, fin=False) + client_frame(OP_CONT, b"b" * 600)
    wire = Wire(data, max_bytes=1024)
    assert wire.ws.receive_raw() is None
    assert wire.ws.close_code == 1009
    assert wire.frames_sent()[-1][0] == OP_CLOSE
    assert parse_close(wire.frames_sent()[-1][1])[0] == 1009


def test_invalid_utf8_closes_1007():
    wire = Wire(client_frame(OP_TEXT, b"\xc3\x28"))
    assert wire.ws.receive() is None
    assert parse_close(wire.frames_sent()[0][1])[0] == 1007


def test_peer_close_is_echoed_once():
    wire = Wire(client_frame(OP_CLOSE, close_payload(1001, "bye")))
    assert wire.ws.receive() is None
    assert wire.ws.peer_close_code == 1001
    wire.ws.close(1000)  # a second close sends nothing
    assert wire.frames_sent() == [(OP_CLOSE, close_payload(1001, ""))]


def test_eof_returns_none_and_marks_closed():
    wire = Wire(b"")
    assert wire.ws.receive() is None
    assert wire.ws.closed
    with pytest.raises(OSError):
        wire.ws.send("late")


def test_send_writes_one_unmasked_frame():
    wire = Wire(b"")
    wire.ws.send('{"type":"x"}')
    wire.ws.send(b"\x01", binary=True)
    wire.ws.send_frame(b'{"raw":true}', OP_TEXT)
    assert wire.frames_sent() == [
        (OP_TEXT, b'{"type":"x"}'),
        (OP_BINARY, b"\x01"),
        (OP_TEXT, b'{"raw":true}'),
    ]


def test_linger_skips_an_oversized_frame_and_reads_up_to_the_close():
    data = (
        client_frame(OP_TEXT, b"x" * 5000)  # refused unread
        + client_frame(OP_TEXT, b"late data")
        + client_frame(OP_CLOSE, close_payload(1009))
        + client_frame(OP_TEXT, b"never read")
    )
    wire = Wire(data, max_bytes=1024)
    assert wire.ws.receive_raw() is None and wire.ws.close_code == 1009
    wire.ws.linger()
    assert wire.ws.peer_close_code == 1009


def test_linger_gives_up_on_an_absurd_claimed_length():
    wire = Wire(b"\x81\xff\x7f" + b"\xff" * 7 + b"mask", max_bytes=1024)
    assert wire.ws.receive_raw() is None and wire.ws.close_code == 1009
    wire.ws.linger()  # returns at once instead of reading petabytes
    assert wire.ws.peer_close_code is None


# ==== over a real socket =======================================================================
class SocketHandler:
    """What FastWebSocket takes from pywsgi's handler: the socket and the buffered reader that
    read the HTTP request (it may already hold the first frames)."""

    class server:
        application = None

    def __init__(self, sock, rfile):
        self.socket = sock
        self.rfile = rfile


def read_all_frames(sock, count: int) -> list[tuple[int, bytes]]:
    reader = sock.makefile("rb")
    return [read_frame(reader.read, 1 << 20, masked=False)[1:] for _ in range(count)]


def test_over_a_socket_pair_frames_read_past_the_handshake_come_first():
    import gevent.socket

    server, client = gevent.socket.socketpair()
    with server, client:
        # Bytes the HTTP parser buffered beyond the request: the first message, half of the next.
        second = client_frame(OP_TEXT, b"second" * 5000)  # larger than one recv
        early = client_frame(OP_TEXT, b"first") + second[:7]
        handler = SocketHandler(server, io.BufferedReader(io.BytesIO(early)))
        ws = FastWebSocket({}, Stream(handler), handler)
        client.sendall(second[7:] + client_frame(OP_PING, b"hi") + client_frame(OP_BINARY, b"3"))
        assert ws.receive_raw() == (OP_TEXT, b"first")
        assert ws.receive_raw() == (OP_TEXT, b"second" * 5000)
        assert ws.receive_raw() == (OP_BINARY, b"3")
        ws.send_many(['{"event":"media"}', '{"event":"mark"}'])
        client.sendall(client_frame(OP_CLOSE, close_payload(1001, "bye")))
        assert ws.receive_raw() is None and ws.peer_close_code == 1001
        assert read_all_frames(client, 4) == [
            (OP_PONG, b"hi"),
            (OP_TEXT, b'{"event":"media"}'),
            (OP_TEXT, b'{"event":"mark"}'),
            (OP_CLOSE, close_payload(1001)),
        ]


def test_over_a_socket_pair_a_peer_that_hangs_up_ends_receive():
    import gevent.socket

    server, client = gevent.socket.socketpair()
    with server:
        handler = SocketHandler(server, server.makefile("rb"))
        ws = FastWebSocket({}, Stream(handler), handler)
        client.sendall(client_frame(OP_TEXT, b"half")[:4])
        client.close()
        assert ws.receive_raw() is None and ws.closed


def test_a_malformed_peer_close_is_answered_1002_and_not_waited_on():
    requested: list[int] = []
    data = io.BytesIO(client_frame(OP_CLOSE, (1005).to_bytes(2, "big")) + b"\x81")
    wire = Wire(b"")
    wire.ws.raw_read = lambda n: requested.append(n) or data.read(n)
    assert wire.ws.receive_raw() is None and wire.ws.close_code == 1002
    before = len(requested)
    wire.ws.linger()  # the peer has closed: nothing more to read before TCP goes away
    assert len(requested) == before


def test_after_a_badframe_header_linger_shuts_down_and_drains_to_the_peers_eof():
    import gevent
    import gevent.socket

    server, client = gevent.socket.socketpair()
    with server, client:
        handler = SocketHandler(server, server.makefile("rb"))
        ws = FastWebSocket({}, Stream(handler), handler)
        # Reserved bits set: the payload after this header is not a frame boundary.
        client.sendall(client_frame(OP_TEXT, b"\x81\x7e\xff\xff" * 4, rsv=0x40))
        assert ws.receive_raw() is None and ws.close_code == 1002
        lingering = gevent.spawn(ws.linger)
        reader = client.makefile("rb")
        assert read_frame(reader.read, 125, masked=False)[1] == OP_CLOSE
        assert reader.read(1) == b""  # our side was shut down after the close frame
        reader.close()
        client.close()
        lingering.join(5)
        assert lingering.dead and lingering.successful()


# ==== reading from the hub (start_hub) =========================================================
class HubCall(HubRecorder):
    """A FastWebSocket over a socket pair whose handshake reader held ``early``; records what
    ``start_hub`` delivers."""

    def __init__(self, early: bytes = b"", max_bytes: int = 1 << 20):
        import gevent.socket

        super().__init__()
        self.server, self.client = gevent.socket.socketpair()
        handler = SocketHandler(self.server, io.BufferedReader(io.BytesIO(early)))
        self.ws = FastWebSocket({}, Stream(handler), handler, max_bytes=max_bytes)

    def hub_socket(self) -> FastWebSocket:
        return self.ws

    def close(self) -> None:
        self.server.close()
        self.client.close()


def test_start_hub_waits_for_the_handshake_reader_then_delivers_messages():
    call = HubCall(early=client_frame(OP_TEXT, b'{"event":"connected"}'))
    try:
        assert call.start() is False  # the handshake's reader still holds a frame
        assert call.ws.receive_raw() == (OP_TEXT, b'{"event":"connected"}')
        assert call.start() is True
        assert call.start() is False  # already running
        call.client.sendall(
            client_frame(OP_TEXT, b'{"event":', fin=False)
            + client_frame(OP_PING, b"are you there")
            + client_frame(OP_CONT, b'"start"}')
            + client_frame(OP_BINARY, b"\x00\x01")
        )
        assert call.wait_for_messages(2) == [
            (OP_TEXT, b'{"event":"start"}'),
            (OP_BINARY, b"\x00\x01"),
        ]
        call.client.sendall(client_frame(OP_CLOSE, close_payload(1001, "bye")))
        assert call.ended.wait(CEILING)
        assert call.ws.peer_close_code == 1001 and call.ws.closed
        call.ws.stop_hub(flush_timeout=CEILING)
        assert call.ends == 1
        assert read_all_frames(call.client, 2) == [
            (OP_PONG, b"are you there"),
            (OP_CLOSE, close_payload(1001)),
        ]
    finally:
        call.close()


def test_start_hub_is_refused_on_a_socket_it_cannot_watch():
    wire = Wire(client_frame(OP_TEXT, b"x"))  # a stream double, as in the tests above
    assert wire.ws.receive_raw() == (OP_TEXT, b"x")
    assert wire.ws.start_hub(print, print) is False
    wire.ws.stop_hub()  # allowed either way


def test_hub_mode_writes_from_the_hub_reach_the_peer_in_order_before_stop_hub_returns():
    import gevent

    call = HubCall(early=client_frame(OP_TEXT, b"first"))
    try:
        assert call.ws.receive_raw() == (OP_TEXT, b"first")
        replies = [(b"%06d" % i) * 10000 for i in range(40)]  # 2.4 MB: more than the kernel takes

        def reply_from_the_hub(opcode: int, payload: bytes) -> None:
            call.on_message(opcode, payload)
            call.ws.send_many([r.decode() for r in replies[:20]])  # in the hub: must not block
            for r in replies[20:]:
                call.ws.send(r, binary=True)

        assert call.ws.start_hub(reply_from_the_hub, call.on_end)
        call.client.sendall(client_frame(OP_TEXT, b"go"))
        call.wait_for_messages(1)
        reader = gevent.spawn(read_all_frames, call.client, 40)
        call.ws.stop_hub(flush_timeout=CEILING)
        # Everything queued reached the kernel before stop_hub returned: closing now loses none.
        call.server.shutdown(2)
        got = reader.get(timeout=CEILING)
        assert got == [(OP_TEXT, r) for r in replies[:20]] + [(OP_BINARY, r) for r in replies[20:]]
        assert call.ends == 0  # stopped by us, not ended by the peer
    finally:
        call.close()


def test_after_stop_hub_the_blocking_path_resumes_with_the_unread_bytes():
    call = HubCall(early=client_frame(OP_TEXT, b"first"))
    try:
        assert call.ws.receive_raw() == (OP_TEXT, b"first")

        def stop_at_once(opcode: int, payload: bytes) -> None:
            call.on_message(opcode, payload)
            call.ws.stop_hub()  # from the hub, mid-chunk: the rest goes back to the reader

        assert call.ws.start_hub(stop_at_once, call.on_end)
        call.client.sendall(client_frame(OP_TEXT, b"hub") + client_frame(OP_TEXT, b"after"))
        assert call.wait_for_messages(1) == [(OP_TEXT, b"hub")]
        assert call.ws.receive_raw() == (OP_TEXT, b"after")  # read the blocking way
        call.ws.send("pulled")  # and written the blocking way again
        assert read_all_frames(call.client, 1) == [(OP_TEXT, b"pulled")]
    finally:
        call.close()


def test_hub_mode_oversized_frame_closes_1009_and_linger_finds_the_peers_close():
    call = HubCall(early=client_frame(OP_TEXT, b"first"), max_bytes=1024)
    try:
        assert call.ws.receive_raw() == (OP_TEXT, b"first")
        assert call.start()
        call.client.sendall(
            client_frame(OP_TEXT, b"x" * 5000)  # refused from its header, payload unread
            + client_frame(OP_TEXT, b"late data")
            + client_frame(OP_CLOSE, close_payload(1009))
        )
        assert call.ended.wait(CEILING)
        assert call.ws.close_code == 1009 and call.messages == []
        call.ws.stop_hub(flush_timeout=CEILING)  # the hub's unread bytes go back
        call.ws.linger()
        assert call.ws.peer_close_code == 1009  # found past the skipped payload
        assert call.ends == 1
        [(op, body)] = read_all_frames(call.client, 1)
        assert op == OP_CLOSE and parse_close(body) == (1009, "message_too_big")
    finally:
        call.close()


@pytest.mark.parametrize(
    "bad, code",
    [
        (b"\x81\x05hello", 1002),  # unmasked: a client must mask
        (client_frame(OP_TEXT, b"\xc3\x28"), 1007),
        (client_frame(OP_CLOSE, (1005).to_bytes(2, "big")), 1002),
    ],
    ids=["unmasked", "invalid-utf8", "bad-close-code"],
)
def test_hub_mode_protocol_errors_close_with_their_code_and_end_once(bad, code):
    call = HubCall(early=client_frame(OP_TEXT, b"first"))
    try:
        assert call.ws.receive_raw() == (OP_TEXT, b"first")
        assert call.start()
        call.client.sendall(client_frame(OP_TEXT, b"ok") + bad + client_frame(OP_TEXT, b"no"))
        assert call.ended.wait(CEILING)
        assert call.messages == [(OP_TEXT, b"ok")] and call.ws.close_code == code
        call.ws.stop_hub(flush_timeout=CEILING)
        assert call.ends == 1
        [(op, body)] = read_all_frames(call.client, 1)
        assert op == OP_CLOSE and parse_close(body)[0] == code
    finally:
        call.close()


def test_hub_mode_peer_hang_up_ends_once():
    call = HubCall(early=client_frame(OP_TEXT, b"first"))
    try:
        assert call.ws.receive_raw() == (OP_TEXT, b"first")
        assert call.start()
        call.client.sendall(client_frame(OP_TEXT, b"half")[:4])
        call.client.shutdown(1)  # SHUT_WR: EOF mid-frame
        assert call.ended.wait(CEILING)
        assert call.ws.closed and call.messages == []
        call.ws.stop_hub()
        assert call.ends == 1
        with pytest.raises(OSError):
            call.ws.send("late")
    finally:
        call.close()
