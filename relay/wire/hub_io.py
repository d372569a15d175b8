"""Socket I/O run from the gevent hub's own loop: the call path's reads and writes.

Why: a greenlet blocked in ``recv`` pays, for every message, a watcher start and stop and two
greenlet switches (hub → reader → hub). A call moves about five messages per 20 ms (Twilio
media in, the append out, the OpenAI delta in, media + mark out, a mark echo in), each on its
own socket at its own moment, so each is a wake-up of the process. ``python -m
bench.wakeup_floor`` on the 2-vCPU machine this was written on: 0.30 CPU-s per call-minute for
that socket work with a greenlet per socket, 0.13 with the libev callbacks used here
(``--callbacks``). The relay's own work per message is a few microseconds more.

:class:`HubReader` hands each chunk the kernel has to a callback, inside the hub;
:class:`Outbox` writes without ever blocking. Code that runs in such a callback must never
block either (no gevent sleep or wait, no contended lock, no Redis): the bridge is sans-I/O,
sends go through an :class:`Outbox`, and slow work is spawned into greenlets, as before.

Plain OS sockets only for reading (the Twilio side arrives as plain TCP behind the platform's
router; a TLS upstream keeps a reader greenlet). An :class:`Outbox` on a TLS socket hands the
bytes to one writer greenlet, so even there a write from the hub never blocks.
"""

from __future__ import annotations

import _socket
import logging
from collections.abc import Callable

import gevent
import gevent.event
import gevent.socket

from relay.wire.codec import FrameError
from relay.wire.frame_buffer import FrameBuffer

log = logging.getLogger(__name__)

_READ, _WRITE = 1, 2
CHUNK = 65536
#: Bytes an :class:`Outbox` may hold for a peer that stopped reading before writes fail.
#: Far above what a call queues (OpenAI sends audio a little faster than real time).
OUTBOX_LIMIT = 8 << 20


class PeerNotReading(OSError):
    """An :class:`Outbox` passed its limit: the peer stopped reading (not a dead socket)."""


def os_socket(sock) -> _socket.socket | None:
    """The non-blocking OS socket under a plain gevent socket, or None (TLS, test doubles)."""
    raw = getattr(sock, "_sock", None)
    if type(sock) is not gevent.socket.socket or not isinstance(raw, _socket.socket):
        return None
    return raw


class HubReader:
    """Calls ``on_data(chunk)`` from the hub whenever the socket has bytes, and ``on_end(exc)``
    once (EOF: ``None``; a socket error or an exception from ``on_data``: that exception).

    One ``recv`` per readiness: the watcher is level-triggered, so bytes left in the kernel
    bring the callback back on the next loop iteration, and no EAGAIN is raised and caught.
    """

    __slots__ = ("_on_data", "_on_end", "_raw", "_watcher")

    def __init__(
        self,
        sock,
        on_data: Callable[[bytes], None],
        on_end: Callable[[BaseException | None], None],
    ):
        raw = os_socket(sock)
        if raw is None:
            raise TypeError("HubReader needs a plain gevent socket")
        self._raw = raw
        self._on_data = on_data
        self._on_end = on_end
        self._watcher = gevent.get_hub().loop.io(raw.fileno(), _READ)

    @staticmethod
    def supported(sock) -> bool:
        return os_socket(sock) is not None

    def start(self) -> None:
        self._watcher.start(self._ready)

    @property
    def active(self) -> bool:
        return self._watcher is not None and self._watcher.active

    def stop(self) -> None:
        """Stop reading (safe to call twice, from anywhere); nothing is delivered after it."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()

    def _ready(self) -> None:
        try:
            chunk = self._raw.recv(CHUNK)
        except BlockingIOError:
            return  # readiness without data (another reader took it): wait again
        except OSError as exc:
            self._end(exc)
            return
        if not chunk:
            self._end(None)
            return
        try:
            self._on_data(chunk)
        except Exception as exc:  # a bug must not kill the hub; the session ends instead
            log.exception("socket reader failed")
            self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        if self._watcher is None:
            return
        self.stop()
        self._on_end(exc)


class Outbox:
    """Ordered writes to one socket that never block the caller.

    What the kernel takes at once goes at once (almost always all of it: a frame is far
    smaller than the socket buffer); the rest waits here, behind which every later write
    queues, and a write watcher sends it when the socket drains. On a socket with no plain
    OS socket under it (TLS) every write is handed to one writer greenlet instead. Once the
    peer has stopped reading for ``limit`` bytes (:class:`PeerNotReading`), or the socket
    failed, ``write`` raises ``OSError``, as a blocking send on a dead socket would.
    """

    __slots__ = (
        "_empty",
        "_pending",
        "_raw",
        "_size",
        "_sock",
        "_wake",
        "_watcher",
        "_writer",
        "error",
        "limit",
    )

    def __init__(self, sock, limit: int = OUTBOX_LIMIT):
        self._sock = sock
        self._raw = os_socket(sock)
        self._pending: list[bytes] = []
        self._size = 0
        self.limit = limit
        self.error: OSError | None = None
        self._empty = gevent.event.Event()
        self._empty.set()
        self._watcher = None
        self._wake: gevent.event.Event | None = None
        self._writer: gevent.Greenlet | None = None

    @property
    def pending_bytes(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        if self._pending or self._raw is None:
            self._queue(data)
            return
        try:
            sent = self._raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.error = exc
            raise
        if sent < len(data):
            self._queue(data[sent:])

    def _queue(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        self._empty.clear()
        if self._size > self.limit:
            self._fail(PeerNotReading(f"peer not reading: {self._size} bytes waiting"))
            raise self.error  # type: ignore[misc]
        if self._raw is not None:
            if self._watcher is None:
                self._watcher = gevent.get_hub().loop.io(self._raw.fileno(), _WRITE)
            if not self._watcher.active:
                self._watcher.start(self._drain)
        else:
            if self._writer is None:
                self._wake = gevent.event.Event()
                self._writer = gevent.spawn(self._write_loop)
            assert self._wake is not None
            self._wake.set()

    def _take(self) -> bytes:
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._size = [], 0
        return data

    def _drain(self) -> None:
        """The write watcher: the socket can take more."""
        data = self._take()
        try:
            sent = self._raw.send(data)  # type: ignore[union-attr]
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._fail(exc)
            return
        if sent < len(data):
            self._pending, self._size = [data[sent:]], len(data) - sent
            return
        self._watcher.stop()  # type: ignore[union-attr]
        self._empty.set()

    def _write_loop(self) -> None:
        """The writer greenlet of a TLS socket: gevent's ``sendall`` may wait there."""
        assert self._wake is not None
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                while self._pending:
                    self._sock.sendall(self._take())
                self._empty.set()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.error = exc
        self._pending, self._size = [], 0
        if self._watcher is not None:
            self._watcher.stop()
        self._empty.set()

    def flush(self, timeout: float) -> bool:
        """Wait (in a greenlet, not the hub) until everything queued was handed to the kernel;
        False if that took longer than ``timeout`` or the socket failed."""
        if gevent.getcurrent() is gevent.get_hub():
            return not self._pending
        self._empty.wait(timeout)
        return not self._pending and self.error is None

    def close(self) -> None:
        """Drop what is still queued and release the watcher or writer."""
        self._pending, self._size = [], 0
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher.close()
            self._watcher = None
        if self._writer is not None:
            self._writer.kill(block=False)
            self._writer = None
        self._empty.set()


class MessagePump:
    """A socket's frames delivered from the hub: :class:`HubReader` + :class:`FrameBuffer`.

    ``on_frame(opcode, payload)`` gets each data message and control frame in order;
    ``on_error(exc)`` a protocol error (:attr:`rest` is then what followed the bad header);
    ``on_eof(exc)`` the end of the stream. After any of the last two nothing more comes.
    """

    __slots__ = ("_frames", "_on_error", "_on_frame", "_reader", "stopped")

    def __init__(
        self,
        sock,
        frames: FrameBuffer,
        on_frame: Callable[[int, bytes], None],
        on_error: Callable[[FrameError], None],
        on_eof: Callable[[BaseException | None], None],
    ):
        self._frames = frames
        self._on_frame = on_frame
        self._on_error = on_error
        self._reader = HubReader(sock, self._data, on_eof)
        self.stopped = False

    @property
    def rest(self) -> bytes:
        return self._frames.rest

    def start(self) -> None:
        """Deliver what was already buffered (now, in the caller), then read from the hub."""
        self._data(b"")
        if not self.stopped:
            self._reader.start()

    def stop(self) -> None:
        self.stopped = True
        self._reader.stop()

    def _data(self, chunk: bytes) -> None:
        frames = self._frames
        on_frame = self._on_frame
        # One message at a time: a stop from on_frame leaves the bytes after it in ``rest``.
        for opcode, payload in frames.parse(chunk):
            on_frame(opcode, payload)
            if self.stopped:
                return
        if frames.error is not None and not self.stopped:
            self.stop()
            self._on_error(frames.error)


def pump(sock, handle: Callable[[int, bytes], None], done: gevent.event.Event) -> None:
    """Hand ``sock``'s messages to ``handle`` until the socket closes (or ``done`` is set).

    From the hub when the socket allows it (``start_hub``: no greenlet switch per message,
    which is most of a call's CPU), else from this greenlet. The first message is read here
    either way: that empties the handshake's buffered reader.
    """
    got = sock.receive_raw()
    if got is None:
        return
    handle(*got)
    ended = gevent.event.Event()
    start = getattr(sock, "start_hub", None)
    if start is not None and not done.is_set() and start(handle, ended.set):
        try:
            ended.wait()
        finally:
            stop = getattr(sock, "stop_hub", None)
            if stop is not None:
                stop()
        return
    while not done.is_set():
        got = sock.receive_raw()
        if got is None:
            break
        handle(*got)
