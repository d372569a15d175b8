"""A phone call as Twilio Media Streams makes it: the other end of the relay's Twilio mode.

It sends ``connected``, ``start`` (with custom parameters) and a ``media`` frame every 20 ms
from a WAV or raw μ-law source (real time, or faster), then ``stop``. What it receives it plays
on a real-time clock like Twilio's player: audio is queued and consumed at 8 bytes per ms; a
``mark`` is echoed once the audio before it has played; ``clear`` drops unplayed audio and
echoes every pending mark at once. Everything heard is kept (and can be saved as a WAV).

Used by the end-to-end tests, by ``python -m sandbox call`` and by the benchmarks.
"""

from __future__ import annotations

import base64
import collections
import secrets
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

FRAME_MS = 20
BYTES_PER_MS = 8
FRAME_BYTES = FRAME_MS * BYTES_PER_MS
SILENCE = b"\xff" * FRAME_BYTES  # μ-law silence


def _ulaw_to_linear(byte: int) -> int:
    u = ~byte & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


ULAW_TO_PCM16 = [_ulaw_to_linear(b) for b in range(256)]


def linear_to_ulaw(sample: int) -> int:
    """One 16-bit PCM sample to G.711 μ-law."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, clip) + bias
    exponent = max(0, sample.bit_length() - 8)
    exponent = min(exponent, 7)
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def read_audio(path: str | Path) -> bytes:
    """μ-law bytes from a WAV (8 kHz mono PCM16 or μ-law) or a raw ``.ulaw`` file."""
    path = Path(path)
    if path.suffix.lower() in (".ulaw", ".mulaw", ".raw"):
        return path.read_bytes()
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getframerate() != 8000 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: need 8 kHz mono 16-bit PCM (convert with sox)")
        frames = wav.readframes(wav.getnframes())
    samples = memoryview(frames).cast("h")
    return bytes(linear_to_ulaw(s) for s in samples)


def save_wav(ulaw: bytes, path: str | Path) -> None:
    """Write μ-law audio as an 8 kHz 16-bit PCM WAV any player opens."""
    pcm = bytearray()
    for b in ulaw:
        pcm += ULAW_TO_PCM16[b].to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(pcm))


def tone(ms: int, freq: float = 300.0, amplitude: int = 8000) -> bytes:
    """A μ-law sine tone: speech-like energy for the simulators' VAD."""
    import math

    n = ms * BYTES_PER_MS
    return bytes(
        linear_to_ulaw(int(amplitude * math.sin(2 * math.pi * freq * i / 8000))) for i in range(n)
    )


@dataclass
class Heard:
    """A span of audio the caller heard: received bytes played between two clock times."""

    started: float
    audio: bytearray = field(default_factory=bytearray)


TWILIO_USER_AGENT = "Twilio.TmeWs/1.0"


class Phone:
    """One simulated call. ``run()`` streams the source, then hangs up (or the relay does)."""

    def __init__(
        self,
        url: str,
        params: dict[str, str] | None = None,
        *,
        speed: float = 1.0,
        headers: dict[str, str] | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
        auth_token: str | None = None,
    ):
        self.url = url
        self.account_sid = account_sid or "AC" + "0" * 32
        self.params = params or {}
        self.speed = speed
        # Twilio's Media Streams upgrade: its User-Agent, no Origin, and X-Twilio-Signature
        # over the wss:// URL with no parameters (signed with the account's auth token).
        self.headers = {"User-Agent": TWILIO_USER_AGENT, **(headers or {})}
        if auth_token and "X-Twilio-Signature" not in self.headers:
            signature = RequestValidator(auth_token).compute_signature(url, {})
            self.headers["X-Twilio-Signature"] = signature
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.call_sid = call_sid or "CA" + secrets.token_hex(16)
        self.ws: ClientConnection | None = None
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stopped = False
        self._queue: collections.deque[tuple[str, bytes | str]] = collections.deque()
        self._play_pos = 0.0  # bytes of the current queue head already played
        self._last_tick = 0.0
        self.heard = bytearray()
        self.heard_log: list[tuple[float, int]] = []  # (clock, total bytes heard)
        self.marks_echoed: list[str] = []
        self.clears: list[tuple[float, int]] = []  # (clock, bytes dropped)
        self.received_after_clear = 0
        self.events: list[dict] = []
        self.sent_start: dict | None = None
        self.stop_sent = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = threading.Event()
        self.t0 = 0.0
        self._speech: collections.deque[bytes] = collections.deque()
        self._seq = 0
        self._chunk = 0

    # -- connection ------------------------------------------------------------------------
    def connect(self, timeout: float = 10.0) -> None:
        self._stopped = False  # a new stream
        self.ws = connect(
            self.url,
            subprotocols=["audio"],
            additional_headers=self.headers,
            open_timeout=timeout,
            max_size=2**24,
        )
        self.t0 = time.monotonic()
        self._last_tick = self.t0
        threading.Thread(target=self._receive_loop, daemon=True).start()
        threading.Thread(target=self._player_loop, daemon=True).start()
        self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self.sent_start = {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": self.stream_sid,
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": self.params,
            },
        }
        self._send(self.sent_start)
        self._seq = 1
        self._chunk = 0

    def _send(self, obj: dict) -> bool:
        # One sender at a time, and nothing after ``stop`` (the line thread may be mid-frame
        # when the call hangs up; Twilio never sends media after a stream's stop).
        with self._send_lock:
            if self.ws is None or self.closed.is_set() or self._stopped:
                return False
            if obj.get("event") == "stop":
                self._stopped = True
            try:
                self.ws.send(orjson.dumps(obj).decode())
                return True
            except ConnectionClosed:
                return False

    def _send_media(self, frame: bytes) -> bool:
        self._seq += 1
        self._chunk += 1
        return self._send(
            {
                "event": "media",
                "sequenceNumber": str(self._seq),
                "streamSid": self.stream_sid,
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str(self._chunk * FRAME_MS),
                    "payload": base64.b64encode(frame).decode(),
                },
            }
        )

    def send_audio(self, ulaw: bytes, *, realtime: bool = True) -> None:
        """Stream ``ulaw`` as 20 ms media frames (paced by ``speed`` when ``realtime``)."""
        start = time.monotonic()
        for i in range(0, len(ulaw), FRAME_BYTES):
            if self.closed.is_set():
                return
            self._send_media(ulaw[i : i + FRAME_BYTES])
            if realtime:
                due = start + (i // FRAME_BYTES + 1) * FRAME_MS / 1000.0 / self.speed
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

    # -- an open line ------------------------------------------------------------------------
    def start_line(self) -> None:
        """Send media without pause, as Twilio does for a live call: whatever :meth:`say`
        queued, else silence, one 20 ms frame per 20 ms (divided by ``speed``)."""
        threading.Thread(target=self._line_loop, daemon=True).start()

    def say(self, ulaw: bytes) -> None:
        """Queue speech on the open line (see :meth:`start_line`)."""
        with self._lock:
            self._speech.extend(ulaw[i : i + FRAME_BYTES] for i in range(0, len(ulaw), FRAME_BYTES))

    def speaking(self) -> bool:
        with self._lock:
            return bool(self._speech)

    def _line_loop(self) -> None:
        start, sent = time.monotonic(), 0
        while not self.closed.is_set():
            with self._lock:
                frame = self._speech.popleft() if self._speech else SILENCE
            if not self._send_media(frame):
                return
            sent += 1
            delay = start + sent * FRAME_MS / 1000.0 / self.speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def silence(self, ms: int) -> None:
        self.send_audio(SILENCE * max(1, ms // FRAME_MS))

    def hang_up(self) -> None:
        """End the stream as Twilio does: a ``stop`` message, then close the socket."""
        self.stop_sent = self._send(
            {
                "event": "stop",
                "sequenceNumber": str(self._seq + 1),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )
        if self.ws is not None:
            self.ws.close()

    def wait_closed(self, timeout: float) -> bool:
        return self.closed.wait(timeout)

    # -- receiving and playing ---------------------------------------------------------------
    def _receive_loop(self) -> None:
        assert self.ws is not None
        try:
            for raw in self.ws:
                msg = orjson.loads(raw)
                self.events.append(msg)
                kind = msg.get("event")
                with self._lock:
                    if kind == "media":
                        audio = base64.b64decode(msg["media"]["payload"])
                        if self.clears:
                            self.received_after_clear += len(audio)
                        self._queue.append(("audio", audio))
                    elif kind == "mark":
                        self._queue.append(("mark", msg["mark"]["name"]))
                    elif kind == "clear":
                        self._clear_locked()
        except ConnectionClosed:
            pass
        finally:
            if self.ws is not None:
                self.close_code = self.ws.close_code
                self.close_reason = self.ws.close_reason or ""
            self.closed.set()

    def _clear_locked(self) -> None:
        dropped = 0
        echoes = []
        for kind, value in self._queue:
            if kind == "audio":
                dropped += len(value)
            else:
                echoes.append(value)
        dropped -= int(self._play_pos)
        self._queue.clear()
        self._play_pos = 0.0
        self.clears.append((time.monotonic(), dropped))
        self.received_after_clear = 0
        for name in echoes:
            self._echo(name)

    def _echo(self, name: str) -> None:
        self.marks_echoed.append(name)
        self._send(
            {
                "event": "mark",
                "streamSid": self.stream_sid,
                "sequenceNumber": "0",
                "mark": {"name": name},
            }
        )

    def _player_loop(self) -> None:
        while not self.closed.is_set():
            time.sleep(0.005)
            self.tick(time.monotonic())

    def tick(self, now: float) -> None:
        """Play what the clock allows since the last tick."""
        with self._lock:
            budget = (now - self._last_tick) * 1000.0 * BYTES_PER_MS * self.speed
            self._last_tick = now
            while self._queue:
                kind, value = self._queue[0]
                if kind == "mark":
                    self._queue.popleft()
                    self._echo(value)  # type: ignore[arg-type]
                    continue
                remaining = len(value) - self._play_pos
                if budget <= 0:
                    break
                take = min(remaining, budget)
                start = int(self._play_pos)
                self._play_pos += take
                budget -= take
                self.heard += value[start : int(self._play_pos)]  # type: ignore[index]
                if self._play_pos >= len(value) - 1e-9:
                    self._queue.popleft()
                    self._play_pos = 0.0
            if not self.heard_log or self.heard_log[-1][1] != len(self.heard):
                self.heard_log.append((now, len(self.heard)))

    def unplayed_bytes(self) -> int:
        with self._lock:
            return sum(len(v) for k, v in self._queue if k == "audio") - int(self._play_pos)
