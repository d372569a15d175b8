"""A fast WebSocket frame path for gevent-websocket's server sockets.

gevent-websocket (the design card) does the HTTP upgrade well, but its reader walks every
payload byte in Python twice: a per-byte XOR loop to unmask and a table-driven UTF-8 state
machine. On a 391-byte Twilio media frame that is about 140 µs of CPU, roughly fifty times what
the same work costs at C speed. Relaying 50 frames a second per call each way, that is the
difference between a few calls and a few hundred per core.

:class:`FastWebSocket` keeps the library's public surface (``receive``, ``send``, ``close``,
``closed``, ``origin``...) so the stock handler can create it, and replaces only the frame path:

* unmasking is one big-int XOR (``int.from_bytes``), which runs in C;
* UTF-8 is validated by ``bytes.decode`` (C), skipped for pure-ASCII payloads (``isascii``);
* a frame or message longer than ``max_bytes`` is refused with 1009 *before* its payload is read;
* sends are serialised by a lock, because several greenlets write to one browser.

The codec helpers at the top are pure functions, unit-tested without sockets and shared with
the benchmark.
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import struct
from collections.abc import Callable

import gevent.lock
import gevent.socket
from geventwebsocket.websocket import WebSocket

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: Close codes (RFC 6455 §7.4.1) the relay sends.
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class FrameError(Exception):
    """The peer broke the protocol: close with ``code``; ``reason`` is one short word (it is
    the close reason the peer sees, and a log and metrics label)."""

    def __init__(self, code: int, reason: str, unread: int = 0):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        #: Payload bytes of the offending frame still on the wire (an oversized frame).
        self.unread = unread


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the repeating 4-byte ``mask`` at C speed (one big-int XOR)."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def encode_header(opcode: int, length: int, fin: bool = True, mask: bytes = b"") -> bytes:
    """The frame header for a payload of ``length`` bytes (masked when ``mask`` is given)."""
    first = (0x80 if fin else 0) | opcode
    bit = 0x80 if mask else 0
    if length < 126:
        head = bytes((first, bit | length))
    elif length < 0x10000:
        head = bytes((first, bit | 126)) + _U16.pack(length)
    else:
        head = bytes((first, bit | 127)) + _U64.pack(length)
    return head + mask


def check_text(payload: bytes) -> None:
    """Raise :class:`FrameError` (1007) unless ``payload`` is UTF-8."""
    if payload.isascii():
        return
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(CLOSE_INVALID_DATA, "invalid_utf8") from None


def close_payload(code: int, reason: str = "") -> bytes:
    """A close frame body: the code, then at most 123 bytes of UTF-8 reason."""
    data = reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")
    return _U16.pack(code) + data


def sendable_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 §7.4)."""
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code < 5000


def parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) from a close frame body; 1005 when it carries no code."""
    if len(payload) < 2:
        return 1005, ""
    code = _U16.unpack_from(payload)[0]
    return code, payload[2:].decode("utf-8", "replace")


def fast_writer(sock) -> Callable[[bytes], None]:
    """``sendall`` for a gevent socket without gevent's per-call wrappers: one non-blocking
    ``send`` on the OS socket almost always takes a whole frame, and gevent's ``sendall``
    (which waits for the socket to drain) finishes the rare rest."""
    sendall = sock.sendall
    raw = _os_socket(sock)
    send = raw.send if raw is not None else sock.send

    def write(data: bytes) -> None:
        try:
            sent = send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            sendall(memoryview(data)[sent:])

    return write


def _os_socket(sock):
    """The non-blocking OS socket under a plain gevent socket, or None (TLS, test doubles)."""
    raw = getattr(sock, "_sock", None)
    if type(sock) is not gevent.socket.socket or not isinstance(raw, _socket.socket):
        return None
    return raw


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
        self._raw = _os_socket(sock)
        self._first = first
        self._buf = b""
        self._pos = 0
        self._drained = False

    @staticmethod
    def supported(sock) -> bool:
        return _os_socket(sock) is not None

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


def read_frame(
    read: Callable[[int], bytes], max_bytes: int, require_mask: bool = True
) -> tuple[bool, int, bytes]:
    """Read one frame with ``read`` (a blocking ``n``-byte reader); return (fin, opcode, payload).

    The payload length is checked against ``max_bytes`` before any of it is read, so an
    oversized frame costs nothing. Client frames must be masked (RFC 6455 §5.1).
    """
    head = read(2)
    if len(head) != 2:
        raise EOFError("connection closed")
    b0, b1 = head[0], head[1]
    if b0 & 0x70:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved_bits")
    fin, opcode, masked, length = bool(b0 & 0x80), b0 & 0x0F, b1 & 0x80, b1 & 0x7F
    if opcode & 0x8 and (not fin or length > 125):
        raise FrameError(CLOSE_PROTOCOL_ERROR, "bad_control_frame")
    if require_mask and not masked:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "unmasked_frame")
    extra = (2 if length == 126 else 8 if length == 127 else 0) + (4 if masked else 0)
    if extra:
        ext = read(extra)
        if len(ext) != extra:
            raise EOFError("connection closed in a frame header")
        if length == 126:
            length = _U16.unpack_from(ext)[0]
        elif length == 127:
            length = _U64.unpack_from(ext)[0]
        mask = ext[-4:] if masked else b""
    else:
        mask = b""
    if length > max_bytes:
        raise FrameError(CLOSE_TOO_BIG, "message_too_big", unread=length)
    payload = read(length) if length else b""
    if len(payload) != length:
        raise EOFError("connection closed in a frame payload")
    if mask:
        payload = unmask(payload, mask)
    return fin, opcode, payload


class FastWebSocket(WebSocket):
    """gevent-websocket's ``WebSocket`` with the frame path above.

    ``receive()`` keeps the library contract (``str`` for text, ``bytes`` for binary, ``None``
    once closed). ``receive_raw()`` returns ``(opcode, payload)`` with text already validated,
    for relays that forward bytes as they came.
    """

    __slots__ = (
        "_send_lock",
        "_unread",
        "close_code",
        "close_reason",
        "max_bytes",
        "peer_close_code",
    )

    def __init__(self, environ, stream, handler, max_bytes: int = 1 << 20):
        super().__init__(environ, stream, handler)
        if (sock := getattr(handler, "socket", None)) is not None:
            self.raw_write = fast_writer(sock)
            if SocketReader.supported(sock):
                self.raw_read = SocketReader(sock, getattr(handler, "rfile", None)).read
        self.max_bytes = max_bytes
        self._send_lock = gevent.lock.Semaphore()
        #: What we sent in our close frame (None while open).
        self.close_code: int | None = None
        self.close_reason = ""
        #: What the peer's close frame said, if it sent one.
        self.peer_close_code: int | None = None
        self._unread = 0

    # -- reading ----------------------------------------------------------------------------
    def read_raw(self) -> tuple[int, bytes] | None:
        """One data message (defragmented). Control frames are answered here. None on close."""
        read = self.raw_read
        limit = self.max_bytes
        opcode = 0
        parts: list[bytes] = []
        size = 0
        while True:
            fin, op, payload = read_frame(read, limit)
            if op in (OP_TEXT, OP_BINARY):
                if parts or opcode:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "bad_fragment")
                if fin:  # the common case: one frame, one message
                    if op == OP_TEXT:
                        check_text(payload)
                    return op, payload
                opcode = op
            elif op == OP_CONT:
                if not opcode:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "bad_fragment")
            elif op == OP_PING:
                self.send_frame(payload, OP_PONG)
                continue
            elif op == OP_PONG:
                continue
            elif op == OP_CLOSE:
                code, _reason = parse_close(payload)
                self.peer_close_code = code
                # Echo the code back (1000 when the peer sent none), as RFC 6455 §5.5.1 asks.
                self.close(code if sendable_close_code(code) else CLOSE_NORMAL)
                return None
            else:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "unknown_opcode")
            size += len(payload)
            if size > limit:
                raise FrameError(CLOSE_TOO_BIG, "message_too_big")
            parts.append(payload)
            if fin:
                message = b"".join(parts)
                if opcode == OP_TEXT:
                    check_text(message)
                return opcode, message

    def receive_raw(self) -> tuple[int, bytes] | None:
        """Like :meth:`read_raw`, but a protocol error or a dead socket closes and returns None."""
        if self.closed:
            return None
        try:
            return self.read_raw()
        except FrameError as exc:
            self._unread = exc.unread
            self.close(exc.code, exc.reason)
        except (EOFError, OSError, AttributeError):
            # AttributeError: raw_read was cleared by a close() in another greenlet.
            self.closed = True
        return None

    def receive(self) -> str | bytes | None:
        got = self.receive_raw()
        if got is None:
            return None
        opcode, payload = got
        return payload.decode("utf-8") if opcode == OP_TEXT else payload

    def linger(self, max_bytes: int = 4 << 20) -> None:
        """After our close frame: read and drop what the peer still sends, up to its close frame.

        Closing TCP with unread bytes in the receive buffer makes the kernel send a reset,
        which can destroy our close frame before the peer reads it (an oversized frame we
        refused unread is the usual case). Run under a timeout; stops at EOF or garbage.
        """
        if self.peer_close_code is not None or self.raw_read is None:
            return
        read, budget = self.raw_read, max_bytes
        try:
            skip, self._unread = self._unread, 0
            if skip > budget:
                return
            while skip:
                chunk = read(min(skip, 65536))
                if not chunk:
                    return
                skip -= len(chunk)
                budget -= len(chunk)
            while budget > 0:
                _fin, op, payload = read_frame(read, min(budget, self.max_bytes))
                budget -= len(payload) + 2
                if op == OP_CLOSE:
                    self.peer_close_code = parse_close(payload)[0]
                    return
        except (FrameError, EOFError, OSError, ValueError):
            return

    # -- writing ----------------------------------------------------------------------------
    def send_frame(self, message: str | bytes, opcode: int) -> None:
        if self.closed and opcode != OP_CLOSE:
            raise OSError("WebSocket is closed")
        data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        frame = encode_header(opcode, len(data)) + data
        with self._send_lock:
            write = self.raw_write
            if write is None:
                raise OSError("WebSocket is closed")
            write(frame)

    def send_many(self, messages: list[str | bytes], opcode: int = OP_TEXT) -> None:
        """Several messages in one write (one system call, one wake-up of the peer)."""
        if self.closed:
            raise OSError("WebSocket is closed")
        out = []
        for message in messages:
            data = message.encode("utf-8") if isinstance(message, str) else message
            out.append(encode_header(opcode, len(data)))
            out.append(data)
        frames = b"".join(out)
        with self._send_lock:
            write = self.raw_write
            if write is None:
                raise OSError("WebSocket is closed")
            write(frames)

    def send(self, message: str | bytes, binary: bool | None = None) -> None:
        """Send a text (``str``, or ``bytes`` with ``binary=False``) or binary message."""
        if binary is None:
            binary = not isinstance(message, str)
        self.send_frame(message, OP_BINARY if binary else OP_TEXT)

    def close(self, code: int = CLOSE_NORMAL, message: str | bytes = b"") -> None:
        """Send one close frame (later calls do nothing); the handler closes the TCP socket."""
        if self.closed:
            return
        reason = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        self.closed = True
        self.close_code, self.close_reason = code, reason
        # If the peer is already gone there is nothing more to tell it.
        with contextlib.suppress(OSError):
            self.send_frame(close_payload(code, reason), OP_CLOSE)
