"""Minimal WebSocket framing on raw asyncio protocols, for the relay benchmark's own processes.

The load generator and the echo upstream must cost less than the relay they measure, and they
must stamp arrival times when the bytes arrive, not when a library gets round to a coroutine.
So both sides are ``asyncio.Protocol`` objects: ``data_received`` reads the clock once per
chunk, and this module turns the chunk into messages (RFC 6455 framing, no extensions). Its
framing is its own (push-based, asyncio-friendly), so the bench does not measure the relay's
codec with itself; only the protocol constants come from :mod:`relay.wire.codec`.
"""

from __future__ import annotations

import random
import struct

from relay.wire.codec import GUID, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT
from relay.wire.codec import accept_key as _accept_key

__all__ = ["GUID", "OP_BINARY", "OP_CLOSE", "OP_CONT", "OP_PING", "OP_PONG", "OP_TEXT"]
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
_rand = random.Random()  # masks need not be cryptographic in a benchmark client


def accept_key(key: bytes) -> bytes:
    return _accept_key(key).encode("ascii")


def xor_mask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def frame(opcode: int, data: bytes, masked: bool) -> bytes:
    """One final frame; client frames (``masked``) get a fresh 4-byte key."""
    n = len(data)
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((0x80 | opcode, bit | n))
    elif n < 0x10000:
        head = bytes((0x80 | opcode, bit | 126)) + _U16.pack(n)
    else:
        head = bytes((0x80 | opcode, bit | 127)) + _U64.pack(n)
    if not masked:
        return head + data
    mask = _rand.getrandbits(32).to_bytes(4, "little")
    return head + mask + xor_mask(data, mask)


class Deframer:
    """Bytes in, complete messages out: ``feed(chunk)`` returns ``[(opcode, payload), ...]``.
    Fragmented messages are reassembled; control frames are returned as they come."""

    __slots__ = ("buf", "part_op", "parts")

    def __init__(self) -> None:
        self.buf = b""
        self.parts: list[bytes] = []
        self.part_op = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self.buf + data if self.buf else data
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            hdr = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = _U16.unpack_from(buf, pos + 2)[0]
                hdr = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = _U64.unpack_from(buf, pos + 2)[0]
                hdr = 10
            masked = b1 & 0x80
            if masked:
                hdr += 4
            if end - pos < hdr + n:
                break
            payload = buf[pos + hdr : pos + hdr + n]
            if masked:
                payload = xor_mask(payload, buf[pos + hdr - 4 : pos + hdr])
            pos += hdr + n
            op, fin = b0 & 0x0F, b0 & 0x80
            if op >= 0x8 or (fin and op != OP_CONT):
                out.append((op, payload))
            else:
                if op != OP_CONT:
                    self.part_op = op
                self.parts.append(payload)
                if fin:
                    out.append((self.part_op, b"".join(self.parts)))
                    self.parts = []
        self.buf = buf[pos:] if pos < end else b""
        return out


def split_head(buf: bytes) -> tuple[bytes, bytes] | None:
    """(HTTP head, rest) once ``buf`` holds a complete head, else None."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    return buf[: i + 4], buf[i + 4 :]


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """(first line, lower-cased headers) of an HTTP request or response head."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers
