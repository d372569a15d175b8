"""WebSocket frames as a client (masked) and a server (unmasked) put them on the wire, for the
codec tests."""

from __future__ import annotations

import os

from relay.wire.codec import encode_header, unmask


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    mask = os.urandom(4)
    head = bytearray(encode_header(opcode, len(payload), fin=fin, mask=mask))
    head[0] |= rsv
    return bytes(head) + unmask(payload, mask)


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    return encode_header(opcode, len(payload), fin=fin) + payload
