"""Audio for the Realtime simulator: μ-law and PCM16 decoding, an energy VAD, test tones.

The VAD is deliberately simple (RMS against a threshold, in 10 ms blocks): what matters for
the relay's tests is that speech start and stop are detected at the right audio time, on the
same μ-law the phone sends and the PCM16 a browser sends.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass


def _ulaw_to_linear(byte: int) -> int:
    u = ~byte & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


ULAW_TABLE = [_ulaw_to_linear(b) for b in range(256)]


def linear_to_ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), 32635) + 0x84
    exponent = max(0, sample.bit_length() - 8)
    mantissa = (sample >> (exponent + 3)) & 0x0F if exponent else (sample >> 3) & 0x0F
    return ~(sign | (min(exponent, 7) << 4) | mantissa) & 0xFF


@dataclass(frozen=True)
class Format:
    """An audio format of the session: ``audio/pcmu`` (8 kHz) or ``audio/pcm`` (24 kHz)."""

    kind: str  # "audio/pcmu" | "audio/pcma" | "audio/pcm"
    rate: int

    @property
    def bytes_per_ms(self) -> int:
        return self.rate // 1000 * (2 if self.kind == "audio/pcm" else 1)

    def samples(self, data: bytes) -> list[int]:
        if self.kind == "audio/pcm":
            pcm = array("h")
            pcm.frombytes(data[: len(data) // 2 * 2])
            if sys.byteorder == "big":
                pcm.byteswap()
            return pcm.tolist()
        return [ULAW_TABLE[b] for b in data]  # A-law is close enough for an energy VAD

    def tone(self, ms: int, freq: float, amplitude: int = 6000) -> bytes:
        n = ms * self.rate // 1000
        step = 2 * math.pi * freq / self.rate
        values = [int(amplitude * math.sin(step * i)) for i in range(n)]
        if self.kind == "audio/pcm":
            pcm = array("h", values)
            if sys.byteorder == "big":
                pcm.byteswap()
            return pcm.tobytes()
        return bytes(linear_to_ulaw(v) for v in values)


PCMU = Format("audio/pcmu", 8000)
PCM24 = Format("audio/pcm", 24000)


def format_of(spec: dict | None) -> Format:
    kind = (spec or {}).get("type", "audio/pcm")
    if kind == "audio/pcm":
        return PCM24
    return Format(kind, 8000)


class Vad:
    """Energy VAD over the input buffer's timeline (audio milliseconds, not wall time)."""

    BLOCK_MS = 10

    def __init__(self, threshold: float = 700.0, silence_ms: int = 500, prefix_ms: int = 300):
        self.threshold = threshold
        self.silence_ms = silence_ms
        self.prefix_ms = prefix_ms
        self.cursor_ms = 0.0
        self.speaking = False
        self.last_loud_ms = 0.0
        self.speech_start_ms = 0.0

    def feed(self, fmt: Format, data: bytes) -> list[tuple[str, int]]:
        """Events ``("started", audio_start_ms)`` / ``("stopped", audio_end_ms)`` for this chunk."""
        events: list[tuple[str, int]] = []
        samples = fmt.samples(data)
        per_block = fmt.rate * self.BLOCK_MS // 1000
        for i in range(0, len(samples), per_block):
            block = samples[i : i + per_block]
            block_ms = len(block) * 1000 / fmt.rate
            rms = math.sqrt(sum(s * s for s in block) / len(block)) if block else 0.0
            if rms >= self.threshold:
                if not self.speaking:
                    self.speaking = True
                    self.speech_start_ms = self.cursor_ms
                    events.append(("started", int(max(0.0, self.cursor_ms - self.prefix_ms))))
                self.last_loud_ms = self.cursor_ms + block_ms
            elif self.speaking and self.cursor_ms + block_ms - self.last_loud_ms >= self.silence_ms:
                self.speaking = False
                events.append(("stopped", int(self.cursor_ms + block_ms)))
            self.cursor_ms += block_ms
        return events
