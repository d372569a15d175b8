"""The gevent I/O side of the relay's server sockets (Twilio, browsers), on :mod:`relay.wire.codec`.

gevent-websocket does the HTTP upgrade well, but its reader walks every payload byte in Python
twice (a per-byte XOR loop to unmask, a table-driven UTF-8 state machine): about 140 µs of CPU
on a 391-byte Twilio media frame, fifty times what the same work costs at C speed. At 50
frames a second per call each way that is the difference between a few calls and a few
hundred per core.

:class:`FastWebSocket` keeps the library's public surface (``receive``, ``send``, ``close``,
``closed``, ``origin``...) so the stock handler can create it, and replaces the frame path with
the codec's (:class:`relay.wire.codec.MessageAssembler`, server rules: client frames must be
masked). Sends are serialised by a lock, because several greenlets write to one browser.
The socket helpers it shares with the upstream client are in :mod:`relay.wire.sockets`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from socket import SHUT_WR

import gevent.lock
from geventwebsocket.websocket import WebSocket

from relay.wire.codec import (
    CLOSE_NORMAL,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    MessageAssembler,
    close_payload,
    close_reply,
    encode_frame,
    parse_close,
    read_frame,
)
from relay.wire.hub_io import MessagePump, Outbox
from relay.wire.sockets import SocketReader, fast_writer, hub_pump


class FastWebSocket(WebSocket):
    """gevent-websocket's ``WebSocket`` with the codec's frame path.

    ``receive()`` keeps the library contract (``str`` for text, ``bytes`` for binary, ``None``
    once closed). ``receive_raw()`` returns ``(opcode, payload)`` with text already validated,
    for relays that forward bytes as they came.
    """

    __slots__ = (
        "_assembler",
        "_hub",
        "_in_sync",
        "_on_end",
        "_on_message",
        "_outbox",
        "_peer_closed",
        "_send_lock",
        "_unread",
        "close_code",
        "close_reason",
        "peer_close_code",
    )

    def __init__(self, environ, stream, handler, max_bytes: int = 1 << 20):
        super().__init__(environ, stream, handler)
        if (sock := getattr(handler, "socket", None)) is not None:
            self.raw_write = fast_writer(sock)
            if SocketReader.supported(sock):
                self.raw_read = SocketReader(sock, getattr(handler, "rfile", None)).read
        self._assembler = MessageAssembler(max_bytes, masked=True)
        self._send_lock = gevent.lock.Semaphore()
        #: What we sent in our close frame (None while open).
        self.close_code: int | None = None
        self.close_reason = ""
        #: What the peer's close frame said, if it sent one.
        self.peer_close_code: int | None = None
        self._peer_closed = False  # its close frame came, but was malformed
        self._in_sync = True  # False after a bad frame header: frame boundaries are lost
        self._unread = 0
        self._hub: MessagePump | None = None
        self._outbox: Outbox | None = None
        self._on_message: Callable[[int, bytes], None] | None = None
        self._on_end: Callable[[], None] | None = None

    @property
    def max_bytes(self) -> int:
        """The largest message (and frame) accepted; larger ones close the socket with 1009."""
        return self._assembler.max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        self._assembler.max_bytes = value

    # -- reading ----------------------------------------------------------------------------
    def read_raw(self) -> tuple[int, bytes] | None:
        """One data message (defragmented). Control frames are answered here. None on close."""
        read, next_message = self.raw_read, self._assembler.next
        while True:
            op, payload = next_message(read)
            if op in (OP_TEXT, OP_BINARY):
                return op, payload
            if op == OP_PING:
                self.send_frame(payload, OP_PONG)
            elif op == OP_CLOSE:
                self.peer_close_code = parse_close(payload)[0]
                self.close(close_reply(payload))
                return None
            # OP_PONG: nothing to do (we send no pings)

    def receive_raw(self) -> tuple[int, bytes] | None:
        """Like :meth:`read_raw`, but a protocol error or a dead socket closes and returns None."""
        if self.closed:
            return None
        try:
            return self.read_raw()
        except FrameError as exc:
            self._unread = exc.unread
            self._peer_closed = exc.peer_closed
            self._in_sync = exc.in_sync
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

    # -- reading from the hub (relay.wire.hub_io) ------------------------------------------------
    def start_hub(
        self, on_message: Callable[[int, bytes], None], on_end: Callable[[], None]
    ) -> bool:
        """Deliver messages from the hub instead of :meth:`receive_raw`: ``on_message(opcode,
        payload)`` per data message (text validated), then ``on_end()`` once when the socket
        closes, fails or breaks the protocol (answered here as :meth:`receive_raw` would).
        Writes then go through an :class:`relay.wire.hub_io.Outbox` and never block. Both
        callbacks run inside the hub: they must not block. False (nothing changed) when this
        socket cannot (TLS, a double's socket, bytes still in the handshake's reader: read one
        message with :meth:`receive_raw` first); call :meth:`stop_hub` when done either way."""
        if self.closed or self._hub is not None:
            return False
        sock = getattr(self.handler, "socket", None)
        pump = hub_pump(
            self.raw_read, sock, self._assembler, self._hub_frame, self._hub_error, self._hub_eof
        )
        if pump is None:
            return False
        self._on_message, self._on_end = on_message, on_end
        self._outbox = Outbox(sock)
        self.raw_write = self._outbox.write
        self._hub = pump
        pump.start()
        return True

    def stop_hub(self, flush_timeout: float = 1.0) -> None:
        """Back to blocking reads and writes (before the socket closes): stop the hub reader,
        give its unread bytes back, and let queued writes reach the kernel first."""
        pump, self._hub = self._hub, None
        if pump is not None:
            pump.stop()
            reader = getattr(self.raw_read, "__self__", None)
            if isinstance(reader, SocketReader):
                reader.give_back(pump.rest)
        outbox, self._outbox = self._outbox, None
        if outbox is not None:
            outbox.flush(flush_timeout)
            outbox.close()
            sock = getattr(self.handler, "socket", None)
            if sock is not None and self.raw_write is not None:
                self.raw_write = fast_writer(sock)

    def _hub_frame(self, opcode: int, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_BINARY):
            self._on_message(opcode, payload)  # type: ignore[misc]
        elif opcode == OP_PING:
            self.send_frame(payload, OP_PONG)
        elif opcode == OP_CLOSE:
            self.peer_close_code = parse_close(payload)[0]
            self.close(close_reply(payload))
            self._hub_done()

    def _hub_error(self, exc: FrameError) -> None:
        self._unread, self._peer_closed, self._in_sync = exc.unread, exc.peer_closed, exc.in_sync
        self.close(exc.code, exc.reason)
        self._hub_done()

    def _hub_eof(self, _exc: BaseException | None) -> None:
        self.closed = True
        self._hub_done()

    def _hub_done(self) -> None:
        if self._hub is not None:
            self._hub.stop()
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    def linger(self, max_bytes: int = 4 << 20) -> None:
        """After our close frame: read and drop what the peer still sends, up to its close frame.

        Closing TCP with unread bytes in the receive buffer makes the kernel send a reset,
        which can destroy our close frame before the peer reads it (an oversized frame we
        refused unread is the usual case). Run under a timeout; stops at EOF or garbage.
        After a bad frame header the peer's frames cannot be found any more: then our side is
        shut down (the peer sees EOF after our close frame and closes) and bytes are dropped
        up to the peer's EOF.
        """
        if self.peer_close_code is not None or self._peer_closed or self.raw_read is None:
            return
        read, budget = self.raw_read, max_bytes
        try:
            if not self._in_sync:
                sock = getattr(self.handler, "socket", None)
                if sock is not None:
                    sock.shutdown(SHUT_WR)
                while budget > 0 and (chunk := read(min(budget, 65536))):
                    budget -= len(chunk)
                return
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
                _fin, op, payload = read_frame(read, min(budget, self.max_bytes), masked=True)
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
        data = message.encode("utf-8") if isinstance(message, str) else message
        frame = encode_frame(opcode, data)
        if self._outbox is not None:  # never blocks: no lock needed, safe in the hub
            self._outbox.write(frame)
            return
        with self._send_lock:
            write = self.raw_write
            if write is None:
                raise OSError("WebSocket is closed")
            write(frame)

    def send_many(self, messages: list[str | bytes], opcode: int = OP_TEXT) -> None:
        """Several messages in one write (one system call, one wake-up of the peer)."""
        if self.closed:
            raise OSError("WebSocket is closed")
        frames = b"".join(
            [encode_frame(opcode, m.encode("utf-8") if isinstance(m, str) else m) for m in messages]
        )
        if self._outbox is not None:
            self._outbox.write(frames)
            return
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
