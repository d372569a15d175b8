"""One load-generator process of :mod:`bench.relay_load`: its share of the simulated Twilio
calls, on raw asyncio protocols (a WebSocket client costs less here than the relay it
measures).

    python -m bench.load_generator     # driven over stdin/stdout by bench.relay_load

Protocol with the parent, one line each: a JSON spec; ``clock`` pings answered with this
process's ``CLOCK_MONOTONIC`` (the parent checks the clock is shared); ``connect``, then
``ready``; a JSON go line with the window; finally the JSON results.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import hmac
import json
import os
import secrets
import sys
import time
from urllib.parse import urlsplit

import orjson

from bench.echo_upstream import BARGE, BARGE_SENT, MAGIC, STAMP, STAMP_B64
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

FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
PERIOD_NS = 20_000_000
#: μ-law silence after the stamp, as base64 (the stamp is a whole number of base64 quanta).
TAIL_B64 = base64.b64encode(b"\xff" * (FRAME_BYTES - STAMP.size))


class Call(asyncio.Protocol):
    """One simulated Twilio stream."""

    def __init__(self, gen: Generator, idx: int, url: str, echo_marks: int = 1):
        #: Echo one mark in ``echo_marks`` (1: every mark, as Twilio does; 0: none).
        self.gen, self.idx, self.echo_marks = gen, idx, echo_marks
        self.marks = 0
        parts = urlsplit(url)
        if parts.scheme != "ws":
            raise ValueError("the bench speaks ws:// only")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.sid = ("MZ" + secrets.token_hex(16)).encode()
        self.call_sid = "CA" + secrets.token_hex(16)  # the one the stream's token names
        # Twilio signs the stream URL as its TwiML wrote it (the relay's public origin + path).
        self.signature = ""
        if gen.spec.get("auth_token") and gen.spec.get("public_url"):
            signed = gen.spec["public_url"].rstrip("/") + self.target
            digest = hmac.new(gen.spec["auth_token"].encode(), signed.encode(), hashlib.sha1)
            self.signature = base64.b64encode(digest.digest()).decode()
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.ws: Deframer | None = None
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed = False
        self.seq = 0
        self.got = bytearray()
        self.cleared_at: int | None = None
        self.barge_done: asyncio.Future | None = None

    # -- transport ---------------------------------------------------------------------------
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.key = base64.b64encode(os.urandom(16))
        transport.write(
            (
                f"GET {self.target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {self.key.decode()}\r\nSec-WebSocket-Protocol: audio\r\n"
                + (f"X-Twilio-Signature: {self.signature}\r\n" if self.signature else "")
                + "\r\n"
            ).encode("latin-1")
        )

    def connection_lost(self, exc) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before the upgrade ({exc!r})"))
        elif not self.gen.stopping:
            self.gen.errors.append(f"call {self.idx}: connection lost mid-call")

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if self.ws is None:
            got = split_head(self.head + data)
            if got is None:
                self.head += data
                return
            head, data = got
            line, headers = parse_head(head)
            if " 101 " not in line + " " or headers.get("sec-websocket-accept") != (
                accept_key(self.key).decode()
            ):
                self.opened.set_exception(ConnectionError(f"upgrade refused: {line}"))
                self.transport.close()
                return
            self.ws = Deframer()
            self.opened.set_result(None)
            if not data:
                return
        for op, payload in self.ws.feed(data):
            if op == OP_TEXT:
                self.on_message(payload, now)
            elif op == OP_PING:
                self.transport.write(frame(OP_PONG, payload, masked=True))
            elif op == OP_CLOSE:
                if not self.closed:
                    self.transport.write(frame(OP_CLOSE, payload[:2], masked=True))
                self.closed = True
                self.transport.close()

    def send_json(self, obj: dict) -> None:
        self.transport.write(frame(OP_TEXT, orjson.dumps(obj), masked=True))

    # -- Media Streams -----------------------------------------------------------------------
    def begin(self) -> None:
        self.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        sid = self.sid.decode()
        start = {
            "accountSid": "AC" + "0" * 32,
            "streamSid": sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"direction": "inbound"},
        }
        self.send_json({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": sid})

    def send_media(self, magic: bytes = MAGIC) -> int:
        """One 20 ms media frame; returns its send time (read just before the stamp)."""
        seq = self.seq
        self.seq += 1
        n = str(seq + 2).encode()
        sent = time.monotonic_ns()
        payload = base64.b64encode(STAMP.pack(magic, self.idx, seq, sent, 0, 0)) + TAIL_B64
        body = (
            b'{"event":"media","sequenceNumber":"' + n + b'","media":{"track":"inbound","chunk":"'
            + n + b'","timestamp":"' + str(seq * 20).encode() + b'","payload":"' + payload
            + b'"},"streamSid":"' + self.sid + b'"}'
        )  # fmt: skip
        self.transport.write(frame(OP_TEXT, body, masked=True))
        return sent

    def stop(self) -> None:
        if self.closed or self.transport is None:
            return
        stop = {"accountSid": "AC" + "0" * 32}
        sid = self.sid.decode()
        self.send_json(
            {"event": "stop", "sequenceNumber": str(self.seq + 2), "stop": stop, "streamSid": sid}
        )
        self.transport.write(frame(OP_CLOSE, (1000).to_bytes(2, "big"), masked=True))

    def on_message(self, raw: bytes, now: int) -> None:
        try:
            msg = orjson.loads(raw)
            event = msg["event"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.gen.bad += 1
            return
        if event == "media":
            audio = msg["media"]["payload"]
            try:
                magic, idx, seq, sent, seen, echoed = STAMP.unpack(
                    base64.b64decode(audio[:STAMP_B64])
                )
            except (ValueError, TypeError):
                return  # audio that is not ours (e.g. another relay's greeting)
            if magic == MAGIC and idx == self.idx:
                got = self.got
                if seq >= len(got):
                    got.extend(bytes(seq + 500 - len(got)))
                if got[seq]:
                    self.gen.duplicates += 1
                    return
                got[seq] = 1
                self.gen.received += 1
                if self.gen.window_start <= sent < self.gen.window_end:
                    self.gen.lat_in.append((seen - sent) // 1000)
                    self.gen.lat_out.append((now - echoed) // 1000)
            elif magic == BARGE_SENT and self.barge_done and not self.barge_done.done():
                self.barge_done.set_result((self.cleared_at, echoed))
        elif event == "mark":
            self.marks += 1
            if self.echo_marks and self.marks % self.echo_marks == 0:
                mark, sid = {"name": msg["mark"]["name"]}, self.sid.decode()
                self.send_json(
                    {"event": "mark", "sequenceNumber": str(self.seq + 2), "streamSid": sid,
                     "mark": mark}
                )  # fmt: skip
        elif event == "clear":
            self.cleared_at = now


class Generator:
    def __init__(self, spec: dict):
        self.spec = spec
        self.calls: list[Call] = []
        self.lat_in: list[int] = []
        self.lat_out: list[int] = []
        self.lateness: list[int] = []
        self.sent = self.received = self.duplicates = self.bad = 0
        self.errors: list[str] = []
        self.barge: list[float] = []
        self.barge_missed = 0
        self.window_start = self.window_end = 0
        self.stopping = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(16)
        echo_marks = self.spec.get("echo_marks", 1) if self.spec["role"] == "load" else 0

        async def one(idx: int, url: str, call_sid: str) -> Call | None:
            async with gate:
                call = Call(self, idx, url, echo_marks)
                call.call_sid = call_sid
                try:
                    await loop.create_connection(lambda: call, call.host, call.port)
                    await asyncio.wait_for(call.opened, 10)
                except (TimeoutError, OSError, ConnectionError) as exc:
                    self.errors.append(f"call {idx}: {exc!r}")
                    return None
                call.begin()
                return call

        opened = await asyncio.gather(*(one(*c) for c in self.spec["calls"]))
        self.calls = [c for c in opened if c is not None]

    async def pump(self, t_start: int, t_end: int) -> None:
        """Every call's frames on one clock: call ``i`` sends at ``t_start + phase_i + k·20 ms``."""
        total = self.spec["total_calls"]
        heap = [(t_start + c.idx * PERIOD_NS // total, i) for i, c in enumerate(self.calls)]
        heapq.heapify(heap)
        calls, lateness = self.calls, self.lateness
        while heap:
            now = time.monotonic_ns()
            while heap and heap[0][0] <= now:
                due, i = heapq.heappop(heap)
                call = calls[i]
                if call.closed:
                    continue
                sent = call.send_media()
                self.sent += 1
                if due >= self.window_start:
                    lateness.append((sent - due) // 1000)
                if due + PERIOD_NS < t_end:
                    heapq.heappush(heap, (due + PERIOD_NS, i))
            if heap:
                await asyncio.sleep(max(0, heap[0][0] - time.monotonic_ns()) / 1e9)

    async def barge_rounds(self, t_start: int, t_end: int, rounds: int) -> None:
        call = self.calls[0]
        await asyncio.sleep(max(0, t_start - time.monotonic_ns()) / 1e9)
        gap = max(0.3, (t_end - t_start) / 1e9 / max(rounds, 1) - 0.05)
        for _ in range(rounds):
            if time.monotonic_ns() > t_end or call.closed:
                break
            for _ in range(10):  # 200 ms of audio to play, as a burst (OpenAI sends faster)
                call.send_media(magic=b"GFPL")
            await asyncio.sleep(0.03)
            call.cleared_at = None
            call.barge_done = asyncio.get_running_loop().create_future()
            call.send_media(magic=BARGE)
            try:
                cleared, sent = await asyncio.wait_for(call.barge_done, 2)
            except TimeoutError:
                self.barge_missed += 1
                continue
            if cleared is None:
                self.barge_missed += 1
            else:
                self.barge.append((cleared - sent) / 1e6)
            await asyncio.sleep(gap)

    async def run(self) -> dict:
        loop = asyncio.get_running_loop()
        await self.open()
        print(json.dumps({"ready": len(self.calls)}), flush=True)
        go = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        t_start = go["t_start"]
        self.window_start = t_start + go["warmup_ns"]
        self.window_end = t_end = self.window_start + go["window_ns"]
        cpu0 = os.times()
        if self.spec["role"] == "barge":
            await self.barge_rounds(self.window_start, t_end, self.spec["rounds"])
        else:
            await self.pump(t_start, t_end)
        cpu1 = os.times()
        await asyncio.sleep(1.0)  # the last echoes
        self.stopping = True
        for call in self.calls:
            call.stop()
        await asyncio.sleep(0.2)
        for call in self.calls:
            if call.transport is not None:
                call.transport.close()
        return {
            "calls": len(self.calls),
            "sent": self.sent,
            "received": self.received,
            "duplicates": self.duplicates,
            "bad": self.bad,
            "errors": self.errors,
            "lat_in_us": self.lat_in,
            "lat_out_us": self.lat_out,
            "lateness_us": self.lateness,
            "barge_ms": self.barge,
            "barge_missed": self.barge_missed,
            "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
            "seconds": (t_end - t_start) / 1e9,
        }


def generator_main() -> int:
    """A generator child: a spec line, clock pings, ``ready``, a go line, results."""
    spec = json.loads(sys.stdin.readline())
    while (line := sys.stdin.readline().strip()) == "clock":
        print(time.monotonic_ns(), flush=True)
    assert line == "connect", line
    result = asyncio.run(Generator(spec).run())
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(generator_main())
