"""The OpenAI Realtime WebSocket (GA), as a small gevent-native client on our frame codec.

Why not a library: measured on loopback under gevent (``bench/frame_path.py --upstream``),
websocket-client adds about 13 µs of CPU per received 1.7 kB event (its pure-Python frame reader;
with UTF-8 validation left on, 400 µs), websockets' sync client about 9 µs, and the openai SDK's
sync realtime client about 200 µs per send (it builds pydantic models). Reusing
:mod:`relay.frames` costs about 1 µs. The client speaks only what the relay needs: one GET with
``Authorization: Bearer`` (no ``OpenAI-Beta`` header: the GA endpoint refuses it), masked
sends, unmasked receives, ping/pong and close.

The socket is a plain (gevent-patched) socket, so reads and writes yield to other greenlets.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import ssl
from urllib.parse import quote, urlsplit

import gevent.lock

from relay.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    SocketReader,
    close_payload,
    encode_header,
    fast_writer,
    parse_close,
    read_frame,
    unmask,
)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Masking keys are drawn from this many bytes of ``os.urandom`` at a time: RFC 6455 §5.3
#: wants each key unpredictable (strong entropy), not a system call per frame.
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


def realtime_url(base: str, model: str) -> str:
    """``OPENAI_REALTIME_URL`` plus ``?model=``."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}model={quote(model, safe='')}"


class Upstream:
    """One open Realtime socket. ``recv_frame`` from one greenlet; ``send`` from any."""

    def __init__(self, sock: socket.socket, reader):
        self.sock = sock
        # The handshake's buffered reader may hold the first frames; SocketReader drains it.
        self._read = (
            SocketReader(sock, reader).read if SocketReader.supported(sock) else reader.read
        )
        self._reader = reader
        self._lock = gevent.lock.Semaphore()
        self._write = fast_writer(sock)
        self._masks = b""
        self._mask_at = 0
        self.closed = False
        #: The close code the server sent, if it sent one.
        self.close_code: int | None = None
        self.close_reason = ""

    # -- receiving --------------------------------------------------------------------------
    def recv_frame(self) -> tuple[int, bytes] | None:
        """The next text/binary message, or None once the server closed or the socket died."""
        parts: list[bytes] = []
        opcode = 0
        try:
            while True:
                fin, op, payload = read_frame(self._read, MAX_EVENT_BYTES, require_mask=False)
                if op == OP_PING:
                    self._send_frame(OP_PONG, payload)
                    continue
                if op == OP_PONG:
                    continue
                if op == OP_CLOSE:
                    self.close_code, self.close_reason = parse_close(payload)
                    self.close(self.close_code if self.close_code != 1005 else 1000)
                    return None
                if op in (OP_TEXT, OP_BINARY):
                    opcode = op
                if fin and not parts:
                    return opcode, payload
                parts.append(payload)
                if fin:
                    return opcode, b"".join(parts)
        except (EOFError, OSError, FrameError, ValueError):
            self.closed = True
            return None

    def recv(self) -> bytes:
        """The next message's bytes; ``b""`` once closed (the shape the Twilio call loop uses)."""
        got = self.recv_frame()
        return got[1] if got else b""

    # -- sending ----------------------------------------------------------------------------
    def _mask(self) -> bytes:
        """A fresh 4-byte masking key from the pool (nothing here yields to another greenlet)."""
        at = self._mask_at
        if at >= len(self._masks):
            self._masks, at = os.urandom(MASK_POOL_BYTES), 0
        self._mask_at = at + 4
        return self._masks[at : at + 4]

    def _send_frame(self, opcode: int, data: bytes) -> None:
        mask = self._mask()
        frame = encode_header(opcode, len(data), mask=mask) + unmask(data, mask)
        with self._lock:
            self._write(frame)

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
        out = []
        for data in messages:
            mask = self._mask()
            out.append(encode_header(OP_TEXT, len(data), mask=mask))
            out.append(unmask(data, mask))
        with self._lock:
            self._write(b"".join(out))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (best effort) and release the socket. Safe to call twice."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self._send_frame(OP_CLOSE, close_payload(code, reason))
        # RuntimeError: a greenlet is still inside reader.read(); the GC frees the reader.
        for release in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self._reader.close):
            with contextlib.suppress(OSError, RuntimeError):
                release()
        self.sock.close()


def connect(url: str, api_key: str, timeout: float = 10.0) -> Upstream:
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
    try:
        if secure:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
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
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise UpstreamError("bad Sec-WebSocket-Accept")
        sock.settimeout(None)
        return Upstream(sock, reader)
    except UpstreamError:
        sock.close()
        raise
    except (OSError, ValueError) as exc:
        sock.close()
        raise UpstreamError(f"handshake failed: {type(exc).__name__}") from None
    except BaseException:  # killed mid-handshake (the client left): release the socket
        sock.close()
        raise
