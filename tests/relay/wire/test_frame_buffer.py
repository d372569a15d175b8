"""The push side of the codec (relay.wire.frame_buffer): bytes in any chunking give what the
pull path gives."""

from __future__ import annotations

import io
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.wire.codec import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    CloseCode,
    FrameError,
    MessageAssembler,
    close_payload,
    encode_header,
    unmask,
)
from relay.wire.frame_buffer import FrameBuffer
from tests.relay.wire.frames import client_frame, server_frame


# ==== the push parser (FrameBuffer) ============================================================
def pulled(data: bytes, masked: bool = True, max_bytes: int = 1 << 20) -> tuple[list, tuple]:
    """What the pull path makes of ``data``: the messages, then ("eof",) or the error."""
    read, asm, out = io.BytesIO(data).read, MessageAssembler(max_bytes, masked), []
    try:
        while True:
            out.append(asm.next(read))
    except EOFError:
        return out, ("eof",)
    except FrameError as exc:
        return out, (int(exc.code), exc.reason, exc.unread)


def pushed(
    chunks: list[bytes], masked: bool = True, max_bytes: int = 1 << 20
) -> tuple[list, tuple, FrameBuffer]:
    """The same from a FrameBuffer fed ``chunks`` one by one."""
    frames, out = FrameBuffer(MessageAssembler(max_bytes, masked)), []
    for chunk in chunks:
        out.extend(frames.feed(chunk))
    if frames.error is not None:
        end: tuple = (int(frames.error.code), frames.error.reason, frames.error.unread)
    else:
        # The pull path sees EOF on a frame boundary as "eof" and mid-frame as EOFError too.
        end = ("eof",)
    return out, end, frames


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


CONTROL = st.one_of(
    st.tuples(st.just(OP_PING), st.binary(max_size=125)),
    st.tuples(st.just(OP_PONG), st.binary(max_size=125)),
    st.tuples(
        st.just(OP_CLOSE),
        st.one_of(
            st.just(b""),
            st.builds(
                close_payload,
                st.sampled_from([1000, 1001, 1008, 1011, 3000, 4999]),
                st.text(max_size=30),
            ),
        ),
    ),
)


@st.composite
def data_message(draw) -> list[tuple[int, bytes, bool]]:
    """One text or binary message as frames: fragments (cut anywhere, even inside a UTF-8
    character), with control frames between them."""
    opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY]))
    if opcode == OP_TEXT:  # short, or long enough for a 16-bit length (126 bytes and more)
        text = st.text(max_size=40) | st.text(min_size=60, max_size=300)
        payload = draw(text).encode("utf-8")
    else:
        payload = draw(st.binary(max_size=40) | st.binary(min_size=126, max_size=600))
    parts = split(payload, draw(st.lists(st.integers(0, 1 << 16), max_size=4)))
    frames: list[tuple[int, bytes, bool]] = []
    for i, part in enumerate(parts):
        frames.append((opcode if i == 0 else OP_CONT, part, i == len(parts) - 1))
        if i < len(parts) - 1:
            frames.extend((op, p, True) for op, p in draw(st.lists(CONTROL, max_size=2)))
    return frames


BAD_TAILS = [
    (OP_TEXT, b"x", True, 0x40),  # reserved bit
    (OP_CONT, b"x", True, 0),  # nothing to continue
    (OP_TEXT, b"\xff", True, 0),  # invalid UTF-8
    (OP_CLOSE, (1005).to_bytes(2, "big"), True, 0),  # a code nobody may send
    (OP_PING, b"p", False, 0),  # a fragmented control frame
]


def wire_of(frames: list[tuple[int, bytes, bool]], masks: list[bytes]) -> bytes:
    """Frames serialised, each masked with the next key from ``masks`` (none: unmasked)."""
    out = []
    for (op, payload, fin), mask in zip(frames, masks or [b""] * len(frames), strict=True):
        body = unmask(payload, mask) if mask else payload
        out.append(encode_header(op, len(payload), fin=fin, mask=mask) + body)
    return b"".join(out)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_frame_buffer_gives_what_the_pull_path_gives_in_any_chunking(data):
    masked = data.draw(st.booleans(), label="masked")
    frames: list[tuple[int, bytes, bool]] = []
    sizes = [0]
    for message in data.draw(st.lists(data_message() | CONTROL.map(lambda c: [(*c, True)]))):
        frames.extend(message)
        sizes.append(sum(len(p) for op, p, _ in message if op in (OP_TEXT, OP_BINARY, OP_CONT)))
    # A limit right at the largest message's size (so 1009 comes, or just does not), or none.
    near = max(sizes) + data.draw(st.integers(-2, 1), label="limit offset")
    max_bytes = data.draw(st.sampled_from([1 << 20, max(near, 126)]), label="max_bytes")
    key = st.binary(min_size=4, max_size=4)
    masks = [data.draw(key) for _ in frames] if masked else []
    wire = wire_of(frames, masks)
    tail = data.draw(st.none() | st.sampled_from(BAD_TAILS), label="bad tail")
    if tail is not None:  # a protocol error, then bytes that must never be parsed
        op, payload, fin, rsv = tail
        bad = bytearray(wire_of([(op, payload, fin)], [b"\x01\x02\x03\x04"] if masked else []))
        bad[0] |= rsv
        wire += bytes(bad) + wire[:50]
    if data.draw(st.booleans(), label="one byte at a time"):
        chunks = [wire[i : i + 1] for i in range(len(wire))]
    else:
        chunks = split(wire, data.draw(st.lists(st.integers(0, 1 << 16), max_size=20)))
    expected_messages, expected_end = pulled(wire, masked, max_bytes)
    got_messages, got_end, buffer = pushed(chunks, masked, max_bytes)
    assert got_messages == expected_messages
    assert got_end == expected_end
    if expected_end == ("eof",):
        assert buffer.rest == b""  # every frame was whole: nothing left behind


def good_then(bad: bytes) -> bytes:
    return client_frame(OP_TEXT, b'{"event":"media"}') + bad


@pytest.mark.parametrize(
    "bad, reason",
    [
        (client_frame(OP_TEXT, b"hi", rsv=0x40), "reserved_bits"),
        (server_frame(OP_TEXT, b"hi"), "unmasked_frame"),
        (client_frame(OP_BINARY, b"x" * 2000), "message_too_big"),
        (client_frame(OP_TEXT, b"\xc3\x28"), "invalid_utf8"),
        (client_frame(OP_CLOSE, (999).to_bytes(2, "big")), "bad_close_code"),
    ],
    ids=["reserved-bits", "unmasked", "oversized", "invalid-utf8", "bad-close-code"],
)
@pytest.mark.parametrize("whole", [True, False], ids=["one-chunk", "byte-by-byte"])
def test_frame_buffer_errors_are_the_pull_paths_and_stop_parsing(bad, reason, whole):
    data = good_then(bad)
    after = client_frame(OP_TEXT, b"never parsed")
    with pytest.raises(FrameError) as pull:
        MessageAssembler(1024, masked=True).next(io.BytesIO(data[len(good_then(b"")) :]).read)
    assert pull.value.reason == reason
    frames = FrameBuffer(MessageAssembler(1024, masked=True))
    chunks = [data] if whole else [data[i : i + 1] for i in range(len(data))]
    got = [m for chunk in chunks for m in frames.feed(chunk)]
    assert got == [(OP_TEXT, b'{"event":"media"}')]
    assert frames.error is not None
    assert (frames.error.code, frames.error.reason) == (pull.value.code, pull.value.reason)
    assert frames.error.unread == pull.value.unread
    assert frames.error.in_sync == pull.value.in_sync
    assert frames.feed(after) == [] and frames.feed(b"") == []


def test_an_oversized_frame_leaves_its_payload_in_rest_after_the_header():
    payload = os.urandom(70000)
    mask = b"\x0a\x0b\x0c\x0d"
    frame = encode_header(OP_BINARY, len(payload), mask=mask) + unmask(payload, mask)
    header = 2 + 8 + 4  # a 64-bit length, then the mask
    frames = FrameBuffer(MessageAssembler(65536, masked=True))
    assert frames.feed(good_then(frame[:5])) == [(OP_TEXT, b'{"event":"media"}')]
    assert frames.error is None  # the length is not known yet: wait for it
    assert frames.feed(frame[5:1000]) == []
    assert frames.error is not None and frames.error.code == CloseCode.TOO_BIG
    assert frames.error.reason == "message_too_big" and frames.error.unread == len(payload)
    assert frames.rest == frame[header:1000]
    assert frames.feed(frame[1000:]) == [] and frames.rest == frame[header:1000]


def test_frame_buffer_keeps_a_partial_frame_and_starts_from_given_bytes():
    first, second = client_frame(OP_TEXT, b"one"), client_frame(OP_BINARY, b"two" * 100)
    frames = FrameBuffer(MessageAssembler(1 << 20, masked=True), first + second[:3])
    assert frames.feed(b"") == [(OP_TEXT, b"one")]
    assert frames.rest == second[:3]
    assert frames.feed(second[3:-1]) == [] and frames.rest == second[:-1]
    assert frames.feed(second[-1:]) == [(OP_BINARY, b"two" * 100)] and frames.rest == b""


def test_frame_buffer_reads_a_64_bit_length_frame_in_uneven_chunks():
    payload = os.urandom(70000)
    wire = client_frame(OP_BINARY, payload) + client_frame(OP_PING, b"after")
    frames = FrameBuffer(MessageAssembler(1 << 20, masked=True))
    got = [m for chunk in split(wire, [1, 9, 13, 14, 40000]) for m in frames.feed(chunk)]
    assert got == [(OP_BINARY, payload), (OP_PING, b"after")] and frames.rest == b""


def test_frame_buffer_parse_stopped_early_leaves_the_untaken_bytes_in_rest():
    first = client_frame(OP_TEXT, b"one")
    later = (
        client_frame(OP_BINARY, b"ab", fin=False)
        + client_frame(OP_PING, b"p")
        + client_frame(OP_CONT, b"cd")
    )
    frames = FrameBuffer(MessageAssembler(1 << 20, masked=True))
    messages = frames.parse(first + later[:5])
    assert next(messages) == (OP_TEXT, b"one")
    assert frames.rest == later[:5]  # the consumer stopped here: nothing after it parsed
    # A pull reader can carry on from rest (as after stop_hub), and so can the buffer.
    assert pulled(frames.rest + later[5:])[0] == [(OP_PING, b"p"), (OP_BINARY, b"abcd")]
    assert frames.feed(later[5:]) == [(OP_PING, b"p"), (OP_BINARY, b"abcd")]
    assert frames.rest == b""
