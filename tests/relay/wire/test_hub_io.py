"""relay.wire.hub_io over real socket pairs under gevent: the hub's reader, the never-blocking
Outbox, and the frame pump that joins HubReader and FrameBuffer.

What "never blocks" means is shown by switches, not by clocks: a write that returned without
a greenlet switch finished before a greenlet spawned after it started, and a write run inside
a hub callback would raise ``BlockingSwitchOutError`` if it tried to wait.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator

import gevent
import gevent.event
import gevent.socket
import pytest

from relay.wire.codec import (
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    CloseCode,
    FrameError,
    MessageAssembler,
    encode_header,
    unmask,
)
from relay.wire.frame_buffer import FrameBuffer
from relay.wire.hub_io import HubReader, MessagePump, Outbox, PeerNotReading, os_socket
from tests.relay.hub_peer import CEILING


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    return encode_header(opcode, len(payload), fin=fin, mask=mask) + unmask(payload, mask)


@pytest.fixture
def pair() -> Iterator[tuple[gevent.socket.socket, gevent.socket.socket]]:
    ours, peer = gevent.socket.socketpair()
    with ours, peer:
        yield ours, peer


def wait_until(check: Callable[[], object]) -> None:
    """Let the hub run until ``check()`` holds (a ceiling, not a measurement)."""
    with gevent.Timeout(CEILING):
        while not check():
            gevent.sleep(0.001)


def receive_exactly(sock, n: int) -> bytes:
    parts, have = [], 0
    with gevent.Timeout(CEILING):
        while have < n:
            chunk = sock.recv(min(65536, n - have))
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
    return b"".join(parts)


def in_hub(fn: Callable[[], object]) -> object:
    """Run ``fn`` as a callback of the hub's loop; return its result or raise what it raised."""
    done = gevent.event.AsyncResult()

    def callback() -> None:
        try:
            done.set(fn())
        except BaseException as exc:  # BlockingSwitchOutError included
            done.set_exception(exc)

    gevent.get_hub().loop.run_callback(callback)
    return done.get(timeout=CEILING)


class Wrapped:
    """A socket that is not a plain gevent socket (as TLS is): only ``sendall``, which may
    wait, and records the greenlet it ran in."""

    def __init__(self, sock):
        self.sock = sock
        self.senders: set[object] = set()

    def sendall(self, data: bytes) -> None:
        self.senders.add(gevent.getcurrent())
        self.sock.sendall(data)


def blocks(count: int, size: int = 65536) -> list[bytes]:
    """Distinct blocks, so order and completeness show in the bytes received."""
    return [i.to_bytes(4, "big") * (size // 4) for i in range(count)]


# ==== HubReader ================================================================================
def test_hub_reader_delivers_every_chunk_then_ends_once_at_eof(pair):
    ours, peer = pair
    got, ends, done = [], [], gevent.event.Event()
    reader = HubReader(ours, got.append, lambda exc: (ends.append(exc), done.set()))
    reader.start()
    assert reader.active
    payload = os.urandom(1 << 20)  # several reads' worth
    peer.sendall(payload)
    peer.shutdown(gevent.socket.SHUT_WR)
    assert done.wait(CEILING)
    assert b"".join(got) == payload
    assert ends == [None] and not reader.active
    reader.stop()  # after the end: nothing happens
    assert ends == [None]


def test_an_exception_from_on_data_ends_the_reader_with_it(pair):
    ours, peer = pair
    got, ends = [], []
    boom = ValueError("bridge bug")

    def on_data(chunk: bytes) -> None:
        got.append(chunk)
        raise boom

    reader = HubReader(ours, on_data, ends.append)
    reader.start()
    peer.sendall(b"first")
    wait_until(lambda: ends)
    assert got == [b"first"] and ends == [boom] and not reader.active
    peer.sendall(b"second")
    # The reader is gone: the bytes stay in the kernel for whoever reads next.
    assert receive_exactly(ours, 6) == b"second"
    assert got == [b"first"] and ends == [boom]


def test_hub_reader_stop_twice_is_safe_and_nothing_is_read_after_it(pair):
    ours, peer = pair
    got, ends = [], []
    reader = HubReader(ours, got.append, ends.append)
    reader.start()
    reader.stop()
    reader.stop()
    assert not reader.active
    peer.sendall(b"unread")
    assert receive_exactly(ours, 6) == b"unread"
    assert got == [] and ends == []


def test_hub_reader_refuses_a_socket_it_cannot_watch(pair):
    ours, _ = pair
    assert HubReader.supported(ours) and os_socket(ours) is not None
    assert not HubReader.supported(Wrapped(ours)) and os_socket(Wrapped(ours)) is None
    with pytest.raises(TypeError):
        HubReader(Wrapped(ours), print, print)


# ==== Outbox ===================================================================================
@pytest.mark.parametrize("plain", [True, False], ids=["plain", "wrapped"])
def test_outbox_writes_far_more_than_the_socket_buffer_without_blocking(pair, plain):
    ours, peer = pair
    target = ours if plain else Wrapped(ours)
    outbox = Outbox(target)
    data = blocks(64)  # 4 MiB to a peer that is not reading
    started_reading: list[bool] = []

    def write_all() -> None:
        for block in data:
            outbox.write(block)

    def read_all() -> bytes:
        started_reading.append(writer.dead)
        return receive_exactly(peer, len(data) * 65536)

    writer = gevent.spawn(write_all)
    reader = gevent.spawn(read_all)
    received = reader.get(timeout=CEILING)
    # The writer greenlet ran to its end before the reader greenlet first ran: no write waited.
    assert started_reading == [True] and writer.successful()
    assert received == b"".join(data)
    assert outbox.flush(CEILING) and outbox.pending_bytes == 0
    if not plain:
        assert target.senders and writer not in target.senders  # the writer greenlet sent
    outbox.close()


@pytest.mark.parametrize("plain", [True, False], ids=["plain", "wrapped"])
def test_outbox_writes_from_inside_a_hub_callback(pair, plain):
    ours, peer = pair
    target = ours if plain else Wrapped(ours)
    outbox = Outbox(target)
    data = blocks(16)  # 1 MiB: more than the kernel takes, so some of it is queued
    first = in_hub(lambda: [outbox.write(block) for block in data[:8]])
    assert first == [None] * 8
    in_hub(lambda: [outbox.write(block) for block in data[8:]])  # behind the queued bytes
    assert receive_exactly(peer, 16 * 65536) == b"".join(data)
    assert outbox.flush(CEILING)
    if not plain:
        assert gevent.get_hub() not in target.senders
    outbox.close()


@pytest.mark.parametrize("plain", [True, False], ids=["plain", "wrapped"])
def test_outbox_over_its_limit_raises_and_keeps_raising(pair, plain):
    ours, _peer = pair
    outbox = Outbox(ours if plain else Wrapped(ours), limit=1 << 20)
    written = 0
    with pytest.raises(PeerNotReading, match="peer not reading"):
        # The kernel's buffer plus the limit, then the write that overflows; in a greenlet,
        # so the wrapped socket's writer gets no chance to drain between writes.
        for block in blocks(200):
            outbox.write(block)
            written += len(block)
    assert written < 200 * 65536
    assert outbox.error is not None
    with pytest.raises(OSError):
        outbox.write(b"later")
    assert not outbox.flush(CEILING)  # the queued bytes were dropped, not delivered
    outbox.close()


def test_outbox_flush_returns_once_a_slow_reader_drained_it(pair):
    ours, peer = pair
    outbox = Outbox(ours)
    data = blocks(32)
    for block in data:
        outbox.write(block)
    assert outbox.pending_bytes > 0  # the kernel could not take 2 MiB at once
    reader = gevent.spawn(receive_exactly, peer, len(data) * 65536)
    assert outbox.flush(CEILING)
    assert outbox.pending_bytes == 0
    assert reader.get(timeout=CEILING) == b"".join(data)
    assert in_hub(lambda: outbox.flush(0))  # from the hub it reports without waiting
    outbox.close()


def test_outbox_to_a_closed_peer_fails_as_a_send_would(pair):
    ours, peer = pair
    outbox = Outbox(ours)
    peer.close()
    with pytest.raises(OSError), gevent.Timeout(CEILING):
        while True:
            outbox.write(b"x" * 65536)
    with pytest.raises(OSError):
        outbox.write(b"again")


# ==== MessagePump ==============================================================================
class Pumped:
    def __init__(self, sock, buffered: bytes = b"", max_bytes: int = 1 << 20):
        self.frames: list[tuple[int, bytes]] = []
        self.errors: list[FrameError] = []
        self.eofs: list[BaseException | None] = []
        frames = FrameBuffer(MessageAssembler(max_bytes, masked=True), buffered)
        self.pump = MessagePump(
            sock,
            frames,
            lambda op, payload: self.frames.append((op, payload)),
            self.errors.append,
            self.eofs.append,
        )


def test_pump_delivers_frames_split_across_chunks_whole(pair):
    ours, peer = pair
    big = os.urandom(100000)
    wire = (
        client_frame(OP_TEXT, b"buffered")
        + client_frame(OP_BINARY, big[:50000], fin=False)
        + client_frame(OP_PING, b"between")
        + client_frame(OP_CONT, big[50000:])
    )
    head = len(client_frame(OP_TEXT, b"buffered"))
    got = Pumped(ours, buffered=wire[: head + 3])  # as the handshake's reader left it
    got.pump.start()
    assert got.frames == [(OP_TEXT, b"buffered")]  # delivered in start(), before any read
    peer.sendall(wire[head + 3 : head + 30000])
    wait_until(lambda: got.pump.rest == wire[head : head + 30000])  # a partial frame, held
    assert got.frames == [(OP_TEXT, b"buffered")]
    peer.sendall(wire[head + 30000 :])
    wait_until(lambda: len(got.frames) == 3)
    assert got.frames[1:] == [(OP_PING, b"between"), (OP_BINARY, big)]
    peer.shutdown(gevent.socket.SHUT_WR)
    wait_until(lambda: got.eofs)
    assert got.eofs == [None] and got.errors == []


def test_pump_reports_a_protocol_error_and_stops(pair):
    ours, peer = pair
    got = Pumped(ours, max_bytes=1024)
    got.pump.start()
    after = client_frame(OP_TEXT, b"after")
    oversized = client_frame(OP_BINARY, b"x" * 5000)
    peer.sendall(client_frame(OP_TEXT, b"ok") + oversized[:200])
    wait_until(lambda: got.errors)
    assert got.frames == [(OP_TEXT, b"ok")]
    [error] = got.errors
    assert (error.code, error.reason, error.unread) == (CloseCode.TOO_BIG, "message_too_big", 5000)
    assert got.pump.stopped and got.pump.rest == oversized[8:200]  # 2 + 2 + 4 header bytes
    peer.sendall(after)  # nobody reads it any more: it stays in the kernel
    assert receive_exactly(ours, len(after)) == after
    assert got.frames == [(OP_TEXT, b"ok")] and got.eofs == []


def test_pump_stopped_from_its_own_callback_delivers_nothing_more(pair):
    ours, peer = pair
    frames: list[tuple[int, bytes]] = []

    def on_frame(op: int, payload: bytes) -> None:
        frames.append((op, payload))
        pump.stop()

    buffer = FrameBuffer(MessageAssembler(1 << 20, masked=True))
    pump = MessagePump(ours, buffer, on_frame, print, print)
    pump.start()
    two = client_frame(OP_TEXT, b"two")
    peer.sendall(client_frame(OP_TEXT, b"one") + two)  # one chunk
    wait_until(lambda: frames)
    assert frames == [(OP_TEXT, b"one")] and pump.stopped
    assert pump.rest == two  # not parsed: a blocking reader can take it from here
    pulled = MessageAssembler(1 << 20, masked=True).next(io.BytesIO(pump.rest).read)
    assert pulled == (OP_TEXT, b"two")
