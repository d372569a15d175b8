"""Caller speech on the line, heard by the relay itself.

GPT-Live's main socket says nothing when the caller starts talking (the model just yields), and
its transcript of the caller comes later. To drop the assistant's queued audio at once, the
relay listens to the caller's μ-law frames while assistant audio is still unheard: enough
frames in a row above a speech level is the caller talking over it. Frames are decoded only
then, so a call pays nothing for this while the assistant is silent.
"""

from __future__ import annotations

import base64


def _ulaw_magnitude(byte: int) -> int:
    """|sample| of a G.711 μ-law byte, scaled to 0-255 (>> 7)."""
    u = ~byte & 0xFF
    exponent, mantissa = (u >> 4) & 0x07, u & 0x0F
    sample = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return min(255, sample >> 7)


#: μ-law byte → magnitude: ``bytes.translate`` then ``sum`` gives a frame's level in C.
_MAGNITUDE = bytes(_ulaw_magnitude(b) for b in range(256))
#: Mean magnitude (|sample| / 128) of speech at telephone level; line noise stays near 0-2.
SPEECH_LEVEL = 10
#: 80 ms of it in a row: a click or a breath does not stop the assistant.
SPEECH_FRAMES = 4


class SpeechDetector:
    def __init__(self) -> None:
        self._run = 0

    def frame(self, payload_b64: str) -> bool:
        """One 20 ms frame (base64 μ-law, already checked); True once the caller talks."""
        raw = base64.b64decode(payload_b64)
        if not raw:
            return False
        level = sum(raw.translate(_MAGNITUDE)) / len(raw)
        self._run = self._run + 1 if level >= SPEECH_LEVEL else 0
        return self._run >= SPEECH_FRAMES

    def reset(self) -> None:
        self._run = 0
