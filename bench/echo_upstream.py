"""An echoing OpenAI Realtime (GA) endpoint for the relay benchmark, in its own process.

    python -m bench.echo_upstream --port 5599 [--delta-type response.audio.delta]

It speaks just enough of the GA Realtime protocol for a phone relay: ``session.created`` on
connect, ``session.updated`` for every ``session.update``, and for every
``input_audio_buffer.append`` one ``response.output_audio.delta`` (``response_id``,
``item_id``, ``output_index``, ``content_index``, ``delta``) carrying the same audio at once.
Greetings (``conversation.item.create``, ``response.create``), cancels and truncates are
accepted and ignored, so the only audio in the run is the load generator's, and it never sends
``speech_started`` on its own (no barge-in during a load run).

Audio that starts with a benchmark stamp (see :data:`STAMP`: magic, call, seq, generator send
time) gets this process's receive time (read once per received chunk, in ``data_received``)
and send time (read just before the write) written into it before it goes back. A stamp with
the barge-in magic is answered with ``input_audio_buffer.speech_started`` instead, and the
time that was sent is reported in a follow-up delta of a new response (the caller measures
speech_started sent → ``clear`` received).

``--pace-ms 20`` is the other traffic shape, the one OpenAI produces: every session sends a
20 ms delta every 20 ms on its own clock (a random phase per session), whatever arrives. A
stamped append is queued and its stamp goes out in the next delta (receive and send times as
above, so both hops are still measured); when none is queued the delta is plain silence.

``--protocol live`` speaks GPT-Live instead: nothing until ``session.start``, then
``session.started``; every ``session.input_audio.append`` comes back as one
``session.output_audio.delta`` (stamped as above). There is no barge-in event on that protocol.

``GET /healthz`` answers ok; ``GET /stats`` returns counters (appends seen, echoes sent,
barge-ins, connections), so the bench can tell where a lost frame was lost. Raw asyncio, no
WebSocket library: per message it costs a fraction of what the relay does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import signal
import struct
import sys
import time
from collections import deque

import orjson

from bench.wsio import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Deframer,
    accept_key,
    frame,
    parse_head,
    split_head,
)

#: Layout of the first 36 bytes of every benchmark audio frame (48 base64 characters):
#: magic, call index, sequence number, generator send ns, upstream receive ns, upstream send ns.
STAMP = struct.Struct("!4sIIQQQ")
STAMP_B64 = STAMP.size * 4 // 3  # 36 bytes: a whole number of base64 quanta
MAGIC = b"GFTS"  # a load frame: echo it with timestamps
BARGE = b"GFBI"  # the caller speaks: answer speech_started
BARGE_SENT = b"GFBS"  # the follow-up that reports when speech_started was sent

STATS = {"connections": 0, "appends": 0, "stamped": 0, "echoed": 0, "barge_ins": 0, "paced": 0}
#: 20 ms of μ-law silence, base64 (what a paced delta carries when no stamp is queued).
SILENCE_B64 = base64.b64encode(b"\xff" * 160).decode()


class EchoSession(asyncio.Protocol):
    delta_type = "response.output_audio.delta"
    #: "realtime", or "live" (GPT-Live: session.start/started, session.* audio events).
    protocol = "realtime"
    #: 0: echo each append at once; else send one delta every this many ns.
    pace_ns = 0

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.ws: Deframer | None = None
        self.turn = 1
        self.events = 0
        self.queued: deque[tuple[tuple, int, str]] = deque()  # (stamp, received ns, tail)
        self.timer: asyncio.TimerHandle | None = None

    # -- transport ---------------------------------------------------------------------------
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def tick(self, due: int) -> None:
        """One paced delta: the oldest queued stamp, or silence."""
        if self.transport is None or self.transport.is_closing():
            return
        if self.queued:
            stamp, seen, tail = self.queued.popleft()
            self.send_delta(stamp, tail, seen)
        else:
            self.send_delta(None, SILENCE_B64, 0)
        STATS["paced"] += 1
        due += self.pace_ns
        loop = asyncio.get_running_loop()
        delay = max(0.0, (due - time.monotonic_ns()) / 1e9)
        self.timer = loop.call_at(loop.time() + delay, self.tick, due)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if self.ws is None:
            self.handshake(data)
            return
        for op, payload in self.ws.feed(data):
            if op == OP_TEXT:
                self.on_event(payload, now)
            elif op == OP_PING:
                self.transport.write(frame(OP_PONG, payload, masked=False))
            elif op == OP_CLOSE:
                self.transport.write(frame(OP_CLOSE, payload[:2], masked=False))
                self.transport.close()
                return

    def handshake(self, data: bytes) -> None:
        got = split_head(self.head + data)
        if got is None:
            self.head += data
            return
        head, rest = got
        line, headers = parse_head(head)
        path = line.split(" ")[1] if line.count(" ") >= 2 else "/"
        if headers.get("upgrade", "").lower() != "websocket":
            body = orjson.dumps(STATS) if path.startswith("/stats") else b'{"status":"ok"}'
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            self.transport.close()
            return
        key = headers.get("sec-websocket-key", "").encode()
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
        )
        self.ws = Deframer()
        STATS["connections"] += 1
        if self.pace_ns:
            first = time.monotonic_ns() + random.randrange(self.pace_ns)
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later((first - time.monotonic_ns()) / 1e9, self.tick, first)
        if self.protocol == "live":  # GPT-Live says nothing before the client's session.start
            if rest:
                self.data_received(rest)
            return
        self.send(
            {
                "type": "session.created",
                "session": {
                    "type": "realtime",
                    "id": f"sess_{id(self):x}",
                    "object": "realtime.session",
                },
            }
        )
        if rest:
            self.data_received(rest)

    def send(self, event: dict) -> None:
        self.events += 1
        event["event_id"] = f"event_{self.events}"
        self.transport.write(frame(OP_TEXT, orjson.dumps(event), masked=False))

    # -- Realtime ----------------------------------------------------------------------------
    def on_event(self, raw: bytes, now: int) -> None:
        try:
            event = orjson.loads(raw)
            kind = event.get("type")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if kind in ("input_audio_buffer.append", "session.input_audio.append"):
            STATS["appends"] += 1
            self.on_audio(str(event.get("audio") or ""), now)
        elif kind == "session.start":
            session = event.get("session") or {}
            self.send(
                {
                    "type": "session.started",
                    "session": {"id": f"sess_{id(self):x}", "model": session.get("model")},
                }
            )
        elif kind == "session.update":
            self.send({"type": "session.updated", "session": event.get("session") or {}})
        # everything else (greeting, response.create/cancel, truncate) is accepted silently

    def on_audio(self, audio: str, now: int) -> None:
        stamp = None
        if len(audio) >= STAMP_B64:
            try:
                stamp = STAMP.unpack(base64.b64decode(audio[:STAMP_B64]))
            except (ValueError, struct.error):
                stamp = None
        if stamp is not None and stamp[0] == BARGE:
            self.barge_in(stamp, audio, now)
            return
        if stamp is not None and stamp[0] == MAGIC:
            STATS["stamped"] += 1
            if self.pace_ns:
                self.queued.append((stamp, now, audio[STAMP_B64:]))
                return
            self.send_delta(stamp, audio[STAMP_B64:], now)
        else:
            self.send_delta(None, audio, now)

    def send_delta(self, stamp: tuple | None, audio: str, seen: int) -> None:
        """One delta; a stamp gets the receive time ``seen`` and the send time written in."""
        if self.protocol == "live":
            prefix = (
                b'{"type":"session.output_audio.delta","event_id":"event_e'
                + str(self.events).encode() + b'","delta":"'
            )  # fmt: skip
        else:
            prefix = (
                b'{"type":"' + self.delta_type.encode() + b'","event_id":"event_e'
                + str(self.events).encode() + b'","response_id":"resp_' + str(self.turn).encode()
                + b'","item_id":"item_' + str(self.turn).encode()
                + b'","output_index":0,"content_index":0,"delta":"'
            )  # fmt: skip
        self.events += 1
        if stamp is not None:
            sent = time.monotonic_ns()
            head = base64.b64encode(STAMP.pack(MAGIC, stamp[1], stamp[2], stamp[3], seen, sent))
            body = prefix + head + audio.encode() + b'"}'
        else:
            body = prefix + audio.encode() + b'"}'
        self.transport.write(frame(OP_TEXT, body, masked=False))
        STATS["echoed"] += 1

    def barge_in(self, stamp: tuple, audio: str, now: int) -> None:
        STATS["barge_ins"] += 1
        event = {
            "type": "input_audio_buffer.speech_started",
            "event_id": f"event_bi{self.turn}",
            "audio_start_ms": 0,
            "item_id": f"item_in{self.turn}",
        }
        data = frame(OP_TEXT, orjson.dumps(event), masked=False)
        sent = time.monotonic_ns()
        self.transport.write(data)
        self.turn += 1  # audio after an interruption belongs to a new response
        head = STAMP.pack(BARGE_SENT, stamp[1], stamp[2], stamp[3], now, sent)
        self.on_audio(base64.b64encode(head).decode() + audio[STAMP_B64:], now)
        # (on_audio echoes it as an ordinary, unstamped delta of the new response)


async def serve(
    host: str, port: int, delta_type: str, pace_ms: float = 0, protocol: str = "realtime"
) -> None:
    EchoSession.delta_type = delta_type
    EchoSession.protocol = protocol
    EchoSession.pace_ns = int(pace_ms * 1e6)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoSession, host, port, backlog=1024)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    print(f"echo upstream on ws://{host}:{port}/v1/realtime", flush=True)
    async with server:
        await stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.echo_upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5599)
    parser.add_argument(
        "--delta-type",
        default="response.output_audio.delta",
        help="response.audio.delta for a relay written against the beta API",
    )
    parser.add_argument("--pace-ms", type=float, default=0, help="paced deltas (0: echo)")
    parser.add_argument(
        "--protocol", choices=("realtime", "live"), default="realtime", help="live: GPT-Live"
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.delta_type, args.pace_ms, args.protocol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
