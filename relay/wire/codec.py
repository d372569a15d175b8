"""The WebSocket protocol core (RFC 6455, no extensions), without I/O.

Parsing and serialising frames, message assembly, close codes and close-payload rules, UTF-8
checks and the handshake's accept key. Both ends of the relay use it: the server side
(:mod:`relay.wire.server_socket`: Twilio and browsers) and the client side
(:mod:`relay.wire.upstream`: OpenAI).
The sides differ in one rule: a server must refuse an unmasked frame, a client a masked one.

Reading is pull-based or push-based over the same checks: :func:`read_frame` takes a blocking
``read(n)`` callable, so the same code runs over a gevent socket, a buffered file or
``io.BytesIO`` in tests; :class:`relay.wire.frame_buffer.FrameBuffer` takes bytes as they
arrive (a reader driven by readiness callbacks, which must never block).

Hot-path choices: unmasking is websockets' C ``apply_mask`` (websockets is already installed for
the simulators), else one big-int XOR (C speed, about 20x a per-byte loop); UTF-8 is
checked by ``bytes.isascii`` / ``bytes.decode`` (C); a frame longer than the limit is refused
from its header, before its payload is read.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import os
import struct
from collections.abc import Callable
from enum import IntEnum

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: Appended to the client's key to prove the server speaks WebSocket (RFC 6455 §1.3).
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
_HEAD16 = struct.Struct("!BBH")  # first byte, second byte, 16-bit length
_HEAD64 = struct.Struct("!BBQ")
#: Control frames carry at most this many payload bytes; a close reason at most 123.
MAX_CONTROL_PAYLOAD = 125


class CloseCode(IntEnum):
    """Close codes (RFC 6455 §7.4.1 and the IANA registry)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never sent: "the close frame had no code"
    ABNORMAL = 1006  # never sent: "no close frame at all"
    INVALID_DATA = 1007
    POLICY = 1008
    TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN = 1013
    BAD_GATEWAY = 1014


# Flat names, as the relay's modules import them.
CLOSE_NORMAL = CloseCode.NORMAL
CLOSE_GOING_AWAY = CloseCode.GOING_AWAY
CLOSE_PROTOCOL_ERROR = CloseCode.PROTOCOL_ERROR
CLOSE_NO_STATUS = CloseCode.NO_STATUS
CLOSE_INVALID_DATA = CloseCode.INVALID_DATA
CLOSE_POLICY = CloseCode.POLICY
CLOSE_TOO_BIG = CloseCode.TOO_BIG
CLOSE_INTERNAL = CloseCode.INTERNAL
CLOSE_TRY_AGAIN = CloseCode.TRY_AGAIN


class FrameError(Exception):
    """The peer broke the protocol: close with ``code``; ``reason`` is one short word (it is
    the close reason the peer sees, and a log and metrics label)."""

    def __init__(self, code: int, reason: str, unread: int = 0):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        #: Payload bytes of the offending frame still on the wire (an oversized frame).
        self.unread = unread
        #: The offending frame was the peer's close frame: it will send nothing more, so
        #: there is nothing to wait for before closing TCP.
        self.peer_closed = False
        #: False when the error is in a frame header: where the next frame starts is unknown.
        self.in_sync = True


def _bad_header(reason: str) -> FrameError:
    exc = FrameError(CLOSE_PROTOCOL_ERROR, reason)
    exc.in_sync = False
    return exc


# -- handshake ---------------------------------------------------------------------------------
def accept_key(key: str | bytes) -> str:
    """``Sec-WebSocket-Accept`` for the client's ``Sec-WebSocket-Key``."""
    raw = key.encode("latin-1") if isinstance(key, str) else key
    return base64.b64encode(hashlib.sha1(raw.strip() + GUID).digest()).decode("ascii")


def new_key() -> bytes:
    """A client's ``Sec-WebSocket-Key``: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16))


# -- frames ------------------------------------------------------------------------------------
def xor_mask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the repeating 4-byte ``mask`` (masking and unmasking alike), in
    pure Python: one big-int XOR."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


try:
    # A C loop: 0.2 µs for a 330-byte Twilio frame against 1 µs for the big-int XOR, on every
    # frame each way (Twilio's are masked to us, ours to OpenAI are masked by us).
    from websockets.speedups import apply_mask as unmask
except ImportError:  # websockets built without its C extension
    unmask = xor_mask


# Headers of unmasked final frames under 126 bytes, the most common ones, prebuilt.
_SHORT_HEADERS = {op: [bytes((0x80 | op, n)) for n in range(126)] for op in (OP_TEXT, OP_BINARY)}


def encode_header(opcode: int, length: int, fin: bool = True, mask: bytes = b"") -> bytes:
    """The frame header for a payload of ``length`` bytes (masked when ``mask`` is given)."""
    first = (0x80 if fin else 0) | opcode
    bit = 0x80 if mask else 0
    if length < 126:
        return bytes((first, bit | length)) + mask
    if length < 0x10000:
        return _HEAD16.pack(first, bit | 126, length) + mask
    return _HEAD64.pack(first, bit | 127, length) + mask


def encode_frame(opcode: int, data: bytes, mask: bytes = b"") -> bytes:
    """One final frame; a client passes a fresh 4-byte ``mask``, a server none."""
    if mask:
        return encode_header(opcode, len(data), mask=mask) + unmask(data, mask)
    n = len(data)
    if n < 126 and opcode in _SHORT_HEADERS:
        return _SHORT_HEADERS[opcode][n] + data
    return encode_header(opcode, n) + data


def frame_head(b0: int, b1: int, masked: bool) -> tuple[bool, int, bool, int]:
    """(fin, opcode, has_mask, 7-bit length) from a frame's first two bytes, with the checks
    that need nothing else (reserved bits, opcodes, control frame rules, the masking rule)."""
    if b0 & 0x70:
        raise _bad_header("reserved_bits")
    fin, opcode, has_mask, length = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
    if opcode & 0x8:
        if not fin or length > MAX_CONTROL_PAYLOAD:
            raise _bad_header("bad_control_frame")
        if opcode > OP_PONG:
            raise _bad_header("unknown_opcode")
    elif opcode > OP_BINARY:
        raise _bad_header("unknown_opcode")
    if has_mask != masked:
        raise _bad_header("unmasked_frame" if masked else "masked_frame")
    return fin, opcode, has_mask, length


def long_length(length: int, ext: bytes) -> int:
    """The real payload length when the 7-bit one is 126 or 127 (``ext`` starts there)."""
    if length == 126:
        return _U16.unpack_from(ext)[0]
    length = _U64.unpack_from(ext)[0]
    if length >> 63:
        raise _bad_header("bad_length")
    return length


def read_frame(
    read: Callable[[int], bytes], max_bytes: int, masked: bool = True
) -> tuple[bool, int, bytes]:
    """Read one frame with ``read`` (a blocking ``n``-byte reader); return (fin, opcode, payload).

    ``masked``: frames must be masked (a server reading a client) or must not be (a client
    reading a server). The length is checked against ``max_bytes`` before the payload is read,
    so an oversized frame costs nothing. EOFError when the peer stops mid-frame.
    """
    head = read(2)
    if len(head) != 2:
        raise EOFError("connection closed")
    fin, opcode, has_mask, length = frame_head(head[0], head[1], masked)
    extra = (2 if length == 126 else 8 if length == 127 else 0) + (4 if has_mask else 0)
    mask = b""
    if extra:
        ext = read(extra)
        if len(ext) != extra:
            raise EOFError("connection closed in a frame header")
        if length >= 126:
            length = long_length(length, ext)
        if has_mask:
            mask = ext[-4:]
    if length > max_bytes:
        raise FrameError(CLOSE_TOO_BIG, "message_too_big", unread=length)
    payload = read(length) if length else b""
    if len(payload) != length:
        raise EOFError("connection closed in a frame payload")
    if mask:
        payload = unmask(payload, mask)
    return fin, opcode, payload


# -- text and close payloads -------------------------------------------------------------------
def check_text(payload: bytes) -> None:
    """Raise :class:`FrameError` (1007) unless ``payload`` is UTF-8."""
    if payload.isascii():
        return
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(CLOSE_INVALID_DATA, "invalid_utf8") from None


def sendable_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 §7.4): the registered codes
    except the three that only describe a missing frame or code, and the application
    ranges 3000-4999."""
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code < 5000


def close_payload(code: int, reason: str = "") -> bytes:
    """A close frame body: the code, then at most 123 bytes of UTF-8 reason (cut at a
    character boundary)."""
    data = reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")
    return _U16.pack(code) + data


def parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) from a close frame body; 1005 when it carries no code.

    A one-byte body, a code no endpoint may send, or a reason that is not UTF-8 is a protocol
    error (FrameError 1002, or 1007 for the reason).
    """
    if not payload:
        return CLOSE_NO_STATUS, ""
    if len(payload) < 2:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "bad_close_frame")
    code = _U16.unpack_from(payload)[0]
    if not sendable_close_code(code):
        raise FrameError(CLOSE_PROTOCOL_ERROR, "bad_close_code")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(CLOSE_INVALID_DATA, "invalid_utf8") from None
    return code, reason


def close_reply(payload: bytes) -> int:
    """The code to answer a peer's close frame with: its own code echoed (RFC 6455 §5.5.1),
    1000 when it sent none; FrameError for a malformed close frame."""
    code = parse_close(payload)[0]
    return CLOSE_NORMAL if code == CLOSE_NO_STATUS else code


# -- messages ----------------------------------------------------------------------------------
class MessageAssembler:
    """Frames in, messages out, with every check RFC 6455 puts on a sequence of frames.

    :meth:`next` reads frames until it has a whole data message or a control frame and returns
    ``(opcode, payload)``: ``OP_TEXT`` (UTF-8 checked) or ``OP_BINARY``, or ``OP_PING`` /
    ``OP_PONG`` / ``OP_CLOSE`` (a close payload already validated) for the caller to answer.
    Control frames may arrive between the fragments of a message; the fragments are kept.

    ``masked`` is the side's rule (:func:`read_frame`): True on a server, False on a client.
    A message over ``max_bytes`` in total is refused (1009). A fragmented text message is
    checked fragment by fragment, so invalid UTF-8 fails as soon as it arrives.
    """

    __slots__ = ("_decoder", "_opcode", "_parts", "_size", "masked", "max_bytes")

    def __init__(self, max_bytes: int, masked: bool):
        self.max_bytes = max_bytes
        self.masked = masked
        self._opcode = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._decoder: codecs.IncrementalDecoder | None = None

    def budget(self) -> int:
        """The largest next frame allowed: what is left of this message's budget (a control
        frame may always be whole)."""
        return max(self.max_bytes - self._size, MAX_CONTROL_PAYLOAD)

    def next(self, read: Callable[[int], bytes]) -> tuple[int, bytes]:
        while True:
            got = self.add(*read_frame(read, self.budget(), self.masked))
            if got is not None:
                return got

    def add(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        """One frame; the message or control frame it completes, or None mid-message."""
        if opcode in (OP_TEXT, OP_BINARY):
            if self._opcode:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "bad_fragment")
            if fin:  # the common case: one frame, one message
                if opcode == OP_TEXT:
                    check_text(payload)
                return opcode, payload
            self._opcode = opcode
            if opcode == OP_TEXT:
                self._decoder = codecs.getincrementaldecoder("utf-8")()
        elif opcode == OP_CONT:
            if not self._opcode:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "bad_fragment")
        else:
            if opcode == OP_CLOSE:
                try:
                    parse_close(payload)
                except FrameError as exc:
                    exc.peer_closed = True
                    raise
            return opcode, payload
        self._size += len(payload)
        if self._size > self.max_bytes:
            raise FrameError(CLOSE_TOO_BIG, "message_too_big")
        if self._decoder is not None:
            try:
                self._decoder.decode(payload, fin)
            except UnicodeDecodeError:
                raise FrameError(CLOSE_INVALID_DATA, "invalid_utf8") from None
        self._parts.append(payload)
        if not fin:
            return None
        message, op = b"".join(self._parts), self._opcode
        self._opcode, self._parts, self._size, self._decoder = 0, [], 0, None
        return op, message


class Masks:
    """4-byte masking keys drawn from ``os.urandom`` a pool at a time: RFC 6455 §5.3 wants each
    key unpredictable (strong entropy), not a system call per frame."""

    __slots__ = ("_at", "_pool", "pool_bytes")

    def __init__(self, pool_bytes: int = 4096):
        self.pool_bytes = pool_bytes
        self._pool = b""
        self._at = 0

    def next(self) -> bytes:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = os.urandom(self.pool_bytes), 0
        self._at = at + 4
        return self._pool[at : at + 4]
