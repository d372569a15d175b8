"""Socket helpers both ends of the relay share: the server sockets
(:mod:`relay.wire.server_socket`) and the upstream client (:mod:`relay.wire.upstream`).

:func:`fast_writer` writes a frame with one non-blocking ``send``; :class:`SocketReader` reads
exact byte counts for the pull path; :func:`hub_pump` hands a socket over to the hub's
callbacks (:mod:`relay.wire.hub_io`) with the bytes its reader still holds.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from relay.wire.codec import FrameError, MessageAssembler
from relay.wire.frame_buffer import FrameBuffer
from relay.wire.hub_io import MessagePump, os_socket


def fast_writer(sock) -> Callable[[bytes], None]:
    """``sendall`` for a gevent socket without gevent's per-call wrappers: one non-blocking
    ``send`` on the OS socket almost always takes a whole frame, and gevent's ``sendall``
    (which waits for the socket to drain) finishes the rare rest."""
    sendall = sock.sendall
    raw = os_socket(sock)
    send = raw.send if raw is not None else sock.send

    def write(data: bytes) -> None:
        try:
            sent = send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            sendall(memoryview(data)[sent:])

    return write


class SocketReader:
    """``read(n)`` for the frame codec, straight from a gevent socket.

    gevent's ``makefile`` reader costs two system calls per message on a socket that is
    usually drained: a ``recv`` that fills the buffer, then one that fails with EAGAIN (a
    raised and caught exception) before the greenlet waits. Here a ``recv`` that returned less
    than it asked for means "drained", so the next fill waits for readability first and its
    ``recv`` always gets data. ``first`` is a buffered reader that may already hold bytes
    read past the HTTP handshake; it is emptied (with one ``read1``) before the socket is used.
    Plain gevent sockets only (``supported``); TLS sockets keep gevent's own ``recv``.
    """

    __slots__ = ("_buf", "_drained", "_first", "_pos", "_raw", "_sock")

    CHUNK = 65536

    def __init__(self, sock, first=None):
        self._sock = sock
        self._raw = os_socket(sock)
        self._first = first
        self._buf = b""
        self._pos = 0
        self._drained = False

    @staticmethod
    def supported(sock) -> bool:
        return os_socket(sock) is not None

    def _fill(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            chunk = first.read1(self.CHUNK)
            if chunk:
                return chunk
        sock, raw = self._sock, self._raw
        while True:
            if self._drained:
                event = sock._read_event
                if event is None:
                    raise OSError(errno.EBADF, "socket closed")
                sock.hub.wait(event)
            try:
                chunk = raw.recv(self.CHUNK)
            except BlockingIOError:
                self._drained = True
                continue
            self._drained = len(chunk) < self.CHUNK
            return chunk

    @property
    def primed(self) -> bool:
        """True once the handshake's buffered reader is empty: every byte since is here or
        still in the kernel, so another reader can take over (:meth:`take`)."""
        return self._first is None

    def take(self) -> bytes:
        """Hand over the bytes read but not yet consumed (to :mod:`relay.wire.hub_io`)."""
        rest = self._buf[self._pos :]
        self._buf, self._pos = b"", 0
        return rest

    def give_back(self, data: bytes) -> None:
        """Take back bytes another reader received but did not consume (after it stopped)."""
        self._buf, self._pos = data + self._buf[self._pos :], 0
        self._drained = False  # the kernel may hold more: try a recv before waiting

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer once the peer closed (as a file's ``read``)."""
        buf, pos = self._buf, self._pos
        end = pos + n
        if end <= len(buf):
            self._pos = end
            return buf[pos:end]
        parts = [buf[pos:]]
        have = len(buf) - pos
        while have < n:
            chunk = self._fill()
            if not chunk:
                self._buf, self._pos = b"", 0
                return b"".join(parts)
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        self._buf, self._pos = data, n
        return data[:n]


def hub_pump(
    read,
    sock,
    assembler: MessageAssembler,
    on_frame: Callable[[int, bytes], None],
    on_error: Callable[[FrameError], None],
    on_eof: Callable[[BaseException | None], None],
) -> MessagePump | None:
    """A :class:`relay.wire.hub_io.MessagePump` that takes over from ``read`` (a
    :meth:`SocketReader.read`) with the bytes it still holds; None when it cannot: not a
    SocketReader, the handshake's buffered reader not yet emptied, or not a plain socket."""
    reader = getattr(read, "__self__", None)
    if not isinstance(reader, SocketReader) or not reader.primed or os_socket(sock) is None:
        return None
    frames = FrameBuffer(assembler, reader.take())
    return MessagePump(sock, frames, on_frame, on_error, on_eof)
