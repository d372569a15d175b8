"""The WebSocket protocol core (relay.wire.codec) without sockets: frames, messages, close rules."""

from __future__ import annotations

import base64
import hashlib
import io
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.wire.codec import (
    GUID,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    CloseCode,
    FrameError,
    Masks,
    MessageAssembler,
    accept_key,
    check_text,
    close_payload,
    close_reply,
    encode_frame,
    encode_header,
    parse_close,
    read_frame,
    sendable_close_code,
    unmask,
    xor_mask,
)
from tests.relay.wire.frames import client_frame, server_frame


def slow_unmask(payload: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def messages(data: bytes, masked: bool = True, max_bytes: int = 1 << 20) -> list:
    """Everything an assembler returns from ``data``, then the error that stopped it."""
    read, asm, out = io.BytesIO(data).read, MessageAssembler(max_bytes, masked), []
    try:
        while True:
            out.append(asm.next(read))
    except EOFError:
        out.append("eof")
    except FrameError as exc:
        out.append(int(exc.code))
    return out


# ==== handshake ================================================================================
def test_accept_key_is_the_rfc_example():
    # RFC 6455 §1.3: this key must be answered with this accept value.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    key = base64.b64encode(os.urandom(16))
    assert accept_key(key) == base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


# ==== frames ===================================================================================
@given(st.binary(max_size=3000), st.binary(min_size=4, max_size=4))
def test_unmask_matches_the_bytewise_definition(payload, mask):
    # Both implementations: the C one in use here and the pure-Python fallback.
    for xor in (unmask, xor_mask):
        assert xor(payload, mask) == slow_unmask(payload, mask)
        assert xor(xor(payload, mask), mask) == payload


def test_the_fast_unmask_is_the_one_in_use():
    from websockets.speedups import apply_mask

    assert unmask is apply_mask


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 1 << 20])
def test_frame_round_trip_at_every_length_boundary(length):
    payload = b"a" * length
    masked = encode_frame(OP_BINARY, payload, mask=b"\x01\x02\x03\x04")
    assert read_frame(io.BytesIO(masked).read, 1 << 21, masked=True) == (True, OP_BINARY, payload)
    plain = encode_frame(OP_BINARY, payload)
    assert read_frame(io.BytesIO(plain).read, 1 << 21, masked=False) == (True, OP_BINARY, payload)
    assert plain == encode_header(OP_BINARY, length) + payload


def test_oversized_frame_is_refused_before_its_payload_is_read():
    requested: list[int] = []
    data = io.BytesIO(client_frame(OP_TEXT, b"x" * 2000))

    def read(n: int) -> bytes:
        requested.append(n)
        return data.read(n)

    with pytest.raises(FrameError) as err:
        read_frame(read, 1024)
    assert err.value.code == CloseCode.TOO_BIG and err.value.unread == 2000
    assert 2000 not in requested


@pytest.mark.parametrize(
    "frame, masked, why",
    [
        (server_frame(OP_TEXT, b"hi"), True, "a server refuses an unmasked client frame"),
        (client_frame(OP_TEXT, b"hi"), False, "a client refuses a masked server frame"),
        (client_frame(OP_TEXT, b"hi", rsv=0x40), True, "reserved bit"),
        (client_frame(OP_PING, b"", fin=False), True, "fragmented control frame"),
        (client_frame(OP_PING, b"p" * 126), True, "control frame over 125 bytes"),
        (client_frame(0x3, b"x"), True, "reserved data opcode"),
        (client_frame(0xB, b""), True, "reserved control opcode"),
        (b"\x82\xff" + b"\xff" * 8 + b"mask", True, "64-bit length with the top bit set"),
    ],
)
def test_protocol_violations_are_1002(frame, masked, why):
    with pytest.raises(FrameError) as err:
        read_frame(io.BytesIO(frame).read, 1 << 20, masked=masked)
    assert err.value.code == CloseCode.PROTOCOL_ERROR, why


def test_truncated_frames_are_eof_not_garbage():
    frame = client_frame(OP_TEXT, b"hello")
    for cut in (0, 1, 3, len(frame) - 1):
        with pytest.raises(EOFError):
            read_frame(io.BytesIO(frame[:cut]).read, 1 << 20)


def test_masks_are_fresh_four_byte_keys():
    masks = Masks(pool_bytes=8)
    keys = [masks.next() for _ in range(6)]  # spans three pools
    assert all(len(k) == 4 for k in keys)
    assert len(set(keys)) > 1


# ==== text and close payloads ==================================================================
def test_utf8_check():
    check_text(b"plain ascii")
    check_text("gate ✓ 門".encode())
    for bad in (b"\xff\xfe bad", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"):
        with pytest.raises(FrameError) as err:
            check_text(bad)  # garbage, a surrogate, an overlong "/", beyond U+10FFFF
        assert err.value.code == CloseCode.INVALID_DATA


def test_close_payload_keeps_reason_short_and_valid_utf8():
    body = close_payload(4000, "✓" * 100)
    assert len(body) <= 125
    code, reason = parse_close(body)
    assert code == 4000 and set(reason) == {"✓"}
    assert parse_close(b"") == (CloseCode.NO_STATUS, "")


@pytest.mark.parametrize(
    "body, code",
    [
        (b"\x03", CloseCode.PROTOCOL_ERROR),  # one byte: half a code
        ((999).to_bytes(2, "big"), CloseCode.PROTOCOL_ERROR),
        ((1005).to_bytes(2, "big"), CloseCode.PROTOCOL_ERROR),  # means "no code": never sent
        ((2999).to_bytes(2, "big"), CloseCode.PROTOCOL_ERROR),
        ((5000).to_bytes(2, "big"), CloseCode.PROTOCOL_ERROR),
        ((1000).to_bytes(2, "big") + "κόσμε".encode() + b"\xed\xa0\x80", 1007),  # a surrogate
    ],
)
def test_malformed_close_frames_are_refused(body, code):
    with pytest.raises(FrameError) as err:
        parse_close(body)
    assert err.value.code == code


def test_close_reply_echoes_the_code_or_says_normal():
    assert close_reply(close_payload(1001, "bye")) == 1001
    assert close_reply(close_payload(4321)) == 4321
    assert close_reply(b"") == CloseCode.NORMAL


def test_sendable_close_codes():
    assert all(sendable_close_code(c) for c in (1000, 1008, 1009, 1011, 1013, 3000, 4999))
    assert not any(sendable_close_code(c) for c in (0, 999, 1004, 1005, 1006, 1015, 2000, 5000))


# ==== messages =================================================================================
def test_single_frame_messages_come_back_as_sent():
    data = client_frame(OP_TEXT, "héllo".encode()) + client_frame(OP_BINARY, b"\x00\xff")
    assert messages(data) == [(OP_TEXT, "héllo".encode()), (OP_BINARY, b"\x00\xff"), "eof"]


def test_fragments_are_joined_and_control_frames_pass_between_them():
    data = (
        client_frame(OP_TEXT, b'{"a":', fin=False)
        + client_frame(OP_PING, b"are you there")
        + client_frame(OP_CONT, b"1", fin=False)
        + client_frame(OP_PONG, b"")
        + client_frame(OP_CONT, b"}")
    )
    assert messages(data) == [
        (OP_PING, b"are you there"),
        (OP_PONG, b""),
        (OP_TEXT, b'{"a":1}'),
        "eof",
    ]


def test_the_client_side_reads_unmasked_frames_with_the_same_rules():
    data = server_frame(OP_BINARY, b"ab", fin=False) + server_frame(OP_CONT, b"cd")
    assert messages(data, masked=False) == [(OP_BINARY, b"abcd"), "eof"]
    assert messages(client_frame(OP_TEXT, b"x"), masked=False) == [1002]


@pytest.mark.parametrize(
    "frames",
    [
        [(OP_CONT, b"x", True)],  # a continuation with nothing to continue
        [(OP_TEXT, b"a", False), (OP_TEXT, b"b", True)],  # a new message inside a message
        [(OP_BINARY, b"a", False), (OP_BINARY, b"b", False)],
    ],
)
def test_bad_fragment_sequences_are_1002(frames):
    data = b"".join(client_frame(op, p, fin=fin) for op, p, fin in frames)
    assert messages(data)[-1] == 1002


def test_fragmented_message_over_the_limit_is_1009_before_the_last_fragment_is_read():
    data = client_frame(OP_TEXT, b"a" * 600, fin=False) + client_frame(OP_CONT, b"b" * 600)
    assert messages(data, max_bytes=1024) == [1009]


def test_a_ping_fits_even_when_the_message_has_used_the_budget():
    data = (
        client_frame(OP_BINARY, b"a" * 1020, fin=False)
        + client_frame(OP_PING, b"p" * 100)
        + client_frame(OP_CONT, b"b" * 4)
    )
    assert messages(data, max_bytes=1024) == [
        (OP_PING, b"p" * 100),
        (OP_BINARY, b"a" * 1020 + b"bbbb"),
        "eof",
    ]


def test_invalid_utf8_fails_on_the_fragment_that_carries_it():
    # The first fragment ends mid-character (fine); the second makes it invalid; the third
    # would never come in time on a real socket, so the error must not wait for it.
    first = client_frame(OP_TEXT, "κόσ".encode() + b"\xce", fin=False)
    data = first + client_frame(OP_CONT, b"\x28", fin=False)
    assert messages(data) == [1007]
    ok = client_frame(OP_TEXT, b"\xce", fin=False) + client_frame(OP_CONT, b"\xbc")
    assert messages(ok) == [(OP_TEXT, "μ".encode()), "eof"]
    cut = client_frame(OP_TEXT, b"\xce", fin=False) + client_frame(OP_CONT, b"")
    assert messages(cut) == [1007]  # the message ends mid-character


def test_an_invalid_close_frame_is_a_protocol_error():
    assert messages(client_frame(OP_CLOSE, b"\x03\xe8\xff")) == [1007]
    assert messages(client_frame(OP_CLOSE, b"\x00")) == [1002]
    assert messages(client_frame(OP_CLOSE, close_payload(1000, "ok"))) == [
        (OP_CLOSE, close_payload(1000, "ok")),
        "eof",
    ]
