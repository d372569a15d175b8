"""The fast frame path without sockets: codec functions and FastWebSocket over a byte buffer."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FastWebSocket,
    FrameError,
    check_text,
    close_payload,
    encode_header,
    parse_close,
    read_frame,
    sendable_close_code,
    unmask,
)


def slow_unmask(payload: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


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
            fin, op, payload = read_frame(io.BytesIO(raw).read, 1 << 30, require_mask=False)
            assert fin
            out.append((op, payload))
        return out


# ==== codec ====================================================================================
@given(st.binary(max_size=3000), st.binary(min_size=4, max_size=4))
def test_unmask_matches_the_bytewise_definition(payload, mask):
    assert unmask(payload, mask) == slow_unmask(payload, mask)
    assert unmask(unmask(payload, mask), mask) == payload


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 1 << 20])
def test_header_round_trip_at_every_length_boundary(length):
    payload = b"a" * length
    for mask in (b"", b"\x01\x02\x03\x04"):
        frame = encode_header(OP_BINARY, length, mask=mask) + unmask(payload, mask or b"\0" * 4)
        fin, op, got = read_frame(io.BytesIO(frame).read, 1 << 21, require_mask=False)
        assert (fin, op, got) == (True, OP_BINARY, payload)


def test_oversized_frame_is_refused_before_its_payload_is_read():
    requested: list[int] = []
    data = io.BytesIO(client_frame(OP_TEXT, b"x" * 2000))

    def read(n: int) -> bytes:
        requested.append(n)
        return data.read(n)

    with pytest.raises(FrameError) as err:
        read_frame(read, 1024)
    assert err.value.code == 1009
    assert 2000 not in requested


@pytest.mark.parametrize(
    "frame, why",
    [
        (encode_header(OP_TEXT, 2) + b"hi", "unmasked client frame"),
        (client_frame(OP_TEXT, b"hi", rsv=0x40), "reserved bit"),
        (client_frame(OP_PING, b"", fin=False), "fragmented control frame"),
        (client_frame(OP_PING, b"p" * 126), "control frame over 125 bytes"),
    ],
)
def test_protocol_violations_close_with_1002(frame, why):
    with pytest.raises(FrameError) as err:
        read_frame(io.BytesIO(frame).read, 1 << 20)
    assert err.value.code == 1002, why


def test_truncated_frames_are_eof_not_garbage():
    frame = client_frame(OP_TEXT, b"hello")
    for cut in (0, 1, 3, len(frame) - 1):
        with pytest.raises(EOFError):
            read_frame(io.BytesIO(frame[:cut]).read, 1 << 20)


def test_utf8_check():
    check_text(b"plain ascii")
    check_text("gate ✓ 門".encode())
    with pytest.raises(FrameError) as err:
        check_text(b"\xff\xfe bad")
    assert err.value.code == 1007


def test_close_payload_keeps_reason_short_and_valid_utf8():
    body = close_payload(4000, "✓" * 100)
    assert len(body) <= 125
    code, reason = parse_close(body)
    assert code == 4000 and set(reason) == {"✓"}
    assert parse_close(b"") == (1005, "")


def test_sendable_close_codes():
    assert all(sendable_close_code(c) for c in (1000, 1008, 1009, 1011, 1013, 4000))
    assert not any(sendable_close_code(c) for c in (999, 1005, 1006, 1015, 2000, 5000))


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
    wire = Wire(b"\x81\xff" + b"\xff" * 8 + b"mask", max_bytes=1024)
    assert wire.ws.receive_raw() is None and wire.ws.close_code == 1009
    wire.ws.linger()  # returns at once instead of reading petabytes
    assert wire.ws.peer_close_code is None
