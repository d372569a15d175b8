"""Audio for the GPT-Live simulator: the four session formats, speech-like tones, fixtures.

A Live session has one format both ways, fixed at ``session.start`` (``audio.format``):
``audio/pcm`` at 24000 (the default) or 16000 Hz (PCM16 little-endian), ``audio/pcmu`` (G.711
μ-law) or ``audio/pcma`` (G.711 A-law) at 8000 Hz. Caller speech is found by the energy VAD of
:mod:`sandbox.realtime_sim.audio` (the same detector the Realtime simulator runs, so the same
phone simulator, sending a tone for speech, drives both); this module adds what that one lacks:
A-law in and out, PCM at 16 kHz, and ``session.output_audio.fixture.play`` clips (PCM16 at
24 kHz whatever the session format) converted to the session's format.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass

from sandbox.realtime_sim.audio import ULAW_TABLE, Format, linear_to_ulaw

#: session ``audio.format.type`` -> the rates the service accepts for it
RATES: dict[str, tuple[int, ...]] = {
    "audio/pcm": (24000, 16000),
    "audio/pcmu": (8000,),
    "audio/pcma": (8000,),
}
FIXTURE_RATE = 24000
FIXTURE_MAX_S = 30


def _alaw_to_linear(byte: int) -> int:
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


ALAW_TABLE = [_alaw_to_linear(b) for b in range(256)]


def linear_to_alaw(sample: int) -> int:
    """One 16-bit PCM sample to G.711 A-law."""
    mask = 0xD5 if sample >= 0 else 0x55
    value = min(abs(sample) if sample >= 0 else -sample - 1, 32767)
    if value < 256:
        code = value >> 4
    else:
        seg = min(value.bit_length() - 8, 7)
        code = (seg << 4) | ((value >> (seg + 3)) & 0x0F)
    return (code ^ mask) & 0xFF


@dataclass(frozen=True)
class LiveFormat(Format):
    """A session format; A-law decodes and encodes as A-law (not approximated as μ-law)."""

    def samples(self, data: bytes) -> list[int]:
        if self.kind == "audio/pcma":
            return [ALAW_TABLE[b] for b in data]
        if self.kind == "audio/pcmu":
            return [ULAW_TABLE[b] for b in data]
        return super().samples(data)

    def encode(self, values: list[int]) -> bytes:
        if self.kind == "audio/pcmu":
            return bytes(linear_to_ulaw(v) for v in values)
        if self.kind == "audio/pcma":
            return bytes(linear_to_alaw(v) for v in values)
        pcm = array("h", (max(-32768, min(32767, v)) for v in values))
        if sys.byteorder == "big":
            pcm.byteswap()
        return pcm.tobytes()

    def tone(self, ms: int, freq: float, amplitude: int = 6000) -> bytes:
        n = ms * self.rate // 1000
        step = 2 * math.pi * freq / self.rate
        return self.encode([int(amplitude * math.sin(step * i)) for i in range(n)])

    def from_fixture(self, pcm24k: bytes) -> bytes:
        """A fixture clip (PCM16 LE, 24 kHz, mono) in this format (decimated, no filter:
        a simulator only needs the right length and energy)."""
        values = PCM24K.samples(pcm24k)
        step = FIXTURE_RATE // self.rate
        return self.encode(values[::step])


PCM24K = LiveFormat("audio/pcm", 24000)
PCMU = LiveFormat("audio/pcmu", 8000)
PCMA = LiveFormat("audio/pcma", 8000)


def format_of(spec: dict | None) -> LiveFormat:
    """The session's format from its resolved ``audio.format`` (already checked)."""
    if not spec:
        return PCM24K
    return LiveFormat(spec["type"], int(spec["rate"]))
