"""The OpenAI Realtime WebSocket (GA), as a small gevent-native client on our frame codec.

Why not a library: measured on loopback under gevent (``bench/frame_path.py --upstream``),
websocket-client adds about 13 µs of CPU per received 1.7 kB event (its pure-Python frame reader;
with UTF-8 validation left on, 400 µs), websockets' sync client about 9 µs, and the openai SDK's
sync realtime client about 200 µs per send (it builds pydantic models). Reusing
:mod:`relay.wire.codec` costs about 1 µs. The client speaks only what the relay needs: one GET with
``Authorization: Bearer`` (no ``OpenAI-Beta`` header: the GA endpoint refuses it), masked
sends, unmasked receives, ping/pong and close, with the same message assembler and checks as
the relay's server side.

The socket is a plain (gevent-patched) socket, so reads and writes yield to other greenlets.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote, urlsplit

from relay.wire.codec import (
    CLOSE_NORMAL,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    Masks,
    MessageAssembler,
    accept_key,
    close_payload,
    close_reply,
    encode_frame,
    new_key,
    parse_close,
)
from relay.wire.hub_io import MessagePump, Outbox
from relay.wire.sockets import SocketReader, hub_pump

#: Masking keys are drawn from this many bytes of ``os.urandom`` at a time.
MASK_POOL_BYTES = 4096
#: Upstream events are trusted but not unbounded (a full response.done with transcripts is
#: well under this).
MAX_EVENT_BYTES = 16 << 20


class UpstreamError(Exception):
    """Connecting failed; ``reason`` is short and safe to log or send to a client."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Upstream(Protocol):
    """What a session needs of the OpenAI Realtime socket (:class:`RealtimeSocket`, or a
    test double). ``receive_raw`` has the same shape as the downstream
    :meth:`relay.wire.server_socket.FastWebSocket.receive_raw`."""

    #: The code of the server's close frame, once it sent one.
    close_code: int | None

    def receive_raw(self) -> tuple[int, bytes] | None:
        """The next data message as (opcode, payload), or None once the socket is closed."""
        ...

    def send(self, message: str | bytes) -> None: ...
    def send_many(self, messages: list[bytes]) -> None: ...
    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None: ...


def realtime_url(base: str, model: str) -> str:
    """``OPENAI_REALTIME_URL`` plus ``?model=``."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}model={quote(model, safe='')}"


class RealtimeSocket:
    """One open Realtime socket (the client side of :mod:`relay.wire.codec`: server frames must be
    unmasked, ours are masked). ``receive_raw`` from one greenlet; ``send`` from any."""

    def __init__(self, sock: socket.socket, reader):
        self.sock = sock
        # The handshake's buffered reader may hold the first frames; SocketReader drains it.
        self._read = (
            SocketReader(sock, reader).read if SocketReader.supported(sock) else reader.read
        )
        self._reader = reader
        self._assembler = MessageAssembler(MAX_EVENT_BYTES, masked=False)
        # Writes never block (safe from the hub's callbacks) and keep their order.
        self._outbox = Outbox(sock)
        self._hub: MessagePump | None = None
        self._on_message: Callable[[int, bytes], None] | None = None
        self._on_end: Callable[[], None] | None = None
        self._masks = Masks(MASK_POOL_BYTES)
        self.closed = False
        #: The close code the server sent, if it sent one.
        self.close_code: int | None = None
        self.close_reason = ""

    # -- receiving --------------------------------------------------------------------------
    def receive_raw(self) -> tuple[int, bytes] | None:
        """The next text/binary message, or None once the server closed or the socket died.
        A protocol error from the server is answered with a close frame naming it."""
        read, next_message = self._read, self._assembler.next
        try:
            while True:
                op, payload = next_message(read)
                if op in (OP_TEXT, OP_BINARY):
                    return op, payload
                if op == OP_PING:
                    self._send_frame(OP_PONG, payload)
                elif op == OP_CLOSE:
                    self.close_code, self.close_reason = parse_close(payload)
                    self.close(close_reply(payload))
                    return None
        except FrameError as exc:
            self.close(exc.code, exc.reason)
        except (EOFError, OSError, ValueError):
            self.closed = True
        return None

    # -- receiving from the hub (relay.wire.hub_io) ----------------------------------------------
    def start_hub(
        self, on_message: Callable[[int, bytes], None], on_end: Callable[[], None]
    ) -> bool:
        """Deliver events from the hub instead of :meth:`receive_raw` (as
        :meth:`relay.wire.server_socket.FastWebSocket.start_hub`): ``on_message(opcode,
        payload)`` per message, then ``on_end()`` once. False when this socket cannot (TLS, or the
        handshake's reader may still hold bytes: read one event with :meth:`receive_raw`
        first). :meth:`close` stops it."""
        if self.closed or self._hub is not None:
            return False
        pump = hub_pump(
            self._read, self.sock, self._assembler, self._hub_frame, self._hub_error, self._hub_eof
        )
        if pump is None:
            return False
        self._on_message, self._on_end = on_message, on_end
        self._hub = pump
        pump.start()
        return True

    def _hub_frame(self, opcode: int, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_BINARY):
            self._on_message(opcode, payload)  # type: ignore[misc]
        elif opcode == OP_PING:
            self._send_frame(OP_PONG, payload)
        elif opcode == OP_CLOSE:
            self.close_code, self.close_reason = parse_close(payload)
            self.close(close_reply(payload))

    def _hub_error(self, exc: FrameError) -> None:
        self.close(exc.code, exc.reason)

    def _hub_eof(self, _exc: BaseException | None) -> None:
        self.close()

    def _hub_done(self) -> None:
        pump, self._hub = self._hub, None
        if pump is not None:
            pump.stop()
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    # -- sending ----------------------------------------------------------------------------
    def _send_frame(self, opcode: int, data: bytes) -> None:
        self._outbox.write(encode_frame(opcode, data, self._masks.next()))

    def send(self, message: str | bytes) -> None:
        """Send one text message (``bytes`` must already be UTF-8)."""
        if self.closed:
            raise OSError("upstream closed")
        data = message.encode("utf-8") if isinstance(message, str) else message
        self._send_frame(OP_TEXT, data)

    def send_many(self, messages: list[bytes]) -> None:
        """Send several text messages in one write, so nothing can slip between them."""
        if self.closed:
            raise OSError("upstream closed")
        mask = self._masks.next
        self._outbox.write(b"".join([encode_frame(OP_TEXT, data, mask()) for data in messages]))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Send a close frame (best effort) and release the socket. Safe to call twice."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self._send_frame(OP_CLOSE, close_payload(code, reason))
            self._outbox.flush(1.0)  # in a greenlet; from the hub, what the kernel took
        self._outbox.close()
        self._hub_done()
        _release(self.sock, self._reader)


def connect(url: str, api_key: str, timeout: float = 10.0) -> RealtimeSocket:
    """Open ``url`` (ws:// or wss://) with ``Authorization: Bearer``; raise UpstreamError."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise UpstreamError(f"connect failed: {type(exc).__name__}") from None
    reader = None
    try:
        if secure:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = new_key()
        host_header = host if parts.port is None else f"{host}:{port}"
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key.decode()}\r\nAuthorization: Bearer {api_key}\r\n\r\n"
        )
        sock.sendall(request.encode("latin-1"))
        reader = sock.makefile("rb")
        status_line = reader.readline(1024)
        headers: dict[str, str] = {}
        while True:
            line = reader.readline(8192)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        fields = status_line.split()
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        if status != 101:
            raise UpstreamError(f"upgrade refused with HTTP {status}", status)
        if headers.get("sec-websocket-accept") != accept_key(key):
            raise UpstreamError("bad Sec-WebSocket-Accept")
        sock.settimeout(None)
        return RealtimeSocket(sock, reader)
    except UpstreamError:
        _release(sock, reader)
        raise
    except (OSError, ValueError) as exc:
        _release(sock, reader)
        raise UpstreamError(f"handshake failed: {type(exc).__name__}") from None
    except BaseException:  # killed mid-handshake (the client left): release the socket
        _release(sock, reader)
        raise


def _release(sock: socket.socket, reader) -> None:
    """Close the socket and its handshake reader. ``sock.close()`` alone keeps the file
    descriptor open while its ``makefile`` reader exists (a killed greenlet's traceback keeps
    the reader alive until the GC runs), and the server would keep its session: shut the
    connection down, close the reader, then the socket. (The reader refuses to close while a
    greenlet is inside ``read``: a later close, once that greenlet is gone, finishes it.)"""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    if reader is not None:
        with contextlib.suppress(OSError, RuntimeError):
            reader.close()
    sock.close()
