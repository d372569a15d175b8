"""CPU per WebSocket frame: gevent-websocket's stock reader vs the relay's frame path.

    python -m bench.frame_path                # server side: one 391-byte masked text frame
    python -m bench.frame_path --upstream     # client side: candidate OpenAI socket clients

The first measures in memory (no sockets): a Twilio ``media`` frame as a browser/Twilio sends
it, read by ``geventwebsocket.websocket.WebSocket`` and by
``relay.wire.server_socket.FastWebSocket``, plus the two costs the stock reader is known for
(unmasking, UTF-8 validation) on their own.

The second runs each client against a loopback server under gevent and reports CPU per
received 1.7 kB ``response.output_audio.delta`` and per sent 0.4 kB append (process CPU, so
the in-process server's share is included; compare against the raw-read baseline row).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable

SID = "MZ" + "0" * 32
PAYLOAD = "/" * 216  # 160 bytes of μ-law (20 ms) as base64


def media_frame_json(size: int = 391) -> bytes:
    body = (
        '{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"3",'
        f'"timestamp":"60","payload":"{PAYLOAD}"}},"streamSid":"{SID}"}}'
    ).encode()
    pad = size - len(body) - 7  # room taken by ,"x":"" around the filler
    assert pad >= 0, len(body)
    return body[:-1] + b',"x":"' + b"." * pad + b'"}'


def masked_frame(payload: bytes) -> bytes:
    from relay.wire.codec import OP_TEXT, encode_header, unmask

    mask = os.urandom(4)
    return encode_header(OP_TEXT, len(payload), mask=mask) + unmask(payload, mask)


def per_call_us(fn: Callable[[], object], seconds: float = 0.5) -> float:
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(200):
            fn()
        n += 200
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / n * 1e6


class _Handler:
    """Just enough of a pywsgi handler for a WebSocket object to live in memory."""

    class server:
        application = None


def server_side() -> None:
    from geventwebsocket.utf8validator import Utf8Validator
    from geventwebsocket.websocket import Header, WebSocket

    from relay.wire.codec import check_text, unmask, xor_mask
    from relay.wire.server_socket import FastWebSocket

    payload = media_frame_json()
    frame = masked_frame(payload)
    buf = io.BytesIO(frame)

    class Stream:
        read = buf.read
        write = staticmethod(lambda data: None)

    def fresh() -> None:
        buf.seek(0)

    stock = WebSocket({}, Stream, _Handler)
    fast = FastWebSocket({}, Stream, _Handler)
    assert stock.read_message() == payload.decode()
    fresh()
    assert fast.receive_raw() == (1, payload)

    header = Header(length=len(payload))
    header.mask = frame[2 + 2 : 2 + 2 + 4] if len(payload) >= 126 else frame[2:6]
    masked = frame[-len(payload) :]
    validator = Utf8Validator()

    rows = [
        ("stock unmask (Header.unmask_payload)", lambda: header.unmask_payload(masked)),
        ("fast  unmask (int XOR, the fallback)", lambda: xor_mask(masked, header.mask)),
        ("fast  unmask (websockets' C apply_mask)", lambda: unmask(masked, header.mask)),
        ("stock UTF-8 (Utf8Validator.validate)", lambda: validator.validate(payload)),
        ("fast  UTF-8 (isascii / bytes.decode)", lambda: check_text(payload)),
        ("fast  UTF-8 forced bytes.decode", lambda: payload.decode("utf-8")),
        ("stock read_message (whole frame)", lambda: (fresh(), stock.read_message())),
        ("fast  receive_raw (whole frame)", lambda: (fresh(), fast.receive_raw())),
        ("baseline: rewind the buffer only", fresh),
    ]
    print(f"{len(payload)}-byte masked text frame ({len(frame)} bytes on the wire)")
    for name, fn in rows:
        print(f"  {name:40s} {per_call_us(fn):8.2f} µs")


def upstream_side(count: int) -> None:
    from bench import upstream_clients

    upstream_clients.main(count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", action="store_true", help="compare upstream clients")
    parser.add_argument("--count", type=int, default=20000, help="messages per client")
    args = parser.parse_args(argv)
    if args.upstream:
        upstream_side(args.count)
    else:
        server_side()
    return 0


if __name__ == "__main__":
    sys.exit(main())
