"""How the simulated Live model speaks, and how it yields.

A mixin of :class:`sandbox.live_sim.session.Session`. One *turn* of speech streams at a time:
``session.output_audio.delta`` events (the session's format, 100 ms each, no ``event_id``, no
timestamps, as on a primary WebSocket), and after a chunk in which a word starts a
``session.output_transcript.delta`` with the word(s) (each with its leading space) and their
``start_ms``/``end_ms`` on the session timeline (contiguous spans). Audio streams
at real time divided by the simulator's ``speed`` (OpenAI streams faster than playback). A turn
lasts 60 ms per character (at least 500 ms), its audio a tone, so a VAD on the relay side
hears speech. Nothing marks the end of a turn (the real service sends no "done").

The model yields by itself: caller speech (the VAD starting) while a turn streams stops it at
once: no more audio or transcript for that turn and no event saying so (there is no truncate
and no cancel). A new turn (an instruction asking to speak, a reply) replaces a turn still
streaming the same way, except a fixture (``session.output_audio.fixture.play``), which plays
whole: the model's next words wait for its end. Each turn is kept in the session record's
``turns`` with its ``status``: ``speaking``, ``done``, ``yielded`` (caller barge-in),
``replaced`` or ``closed``.

The session timeline is the input audio clock (milliseconds of caller audio received, as the
client streams continuously, silence included); a turn starts at that clock or where the
previous turn ended, whichever is later.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.live_sim.audio import LiveFormat

CHUNK_MS = 100
MS_PER_CHAR = 60
GREETING = "Hello, thanks for calling GateFrames. How can I help with your gate today?"
GOODBYE = "Thanks for calling GateFrames. Goodbye!"
REPLY = "This is the GateFrames assistant. How can I help with your gate?"
ACKNOWLEDGEMENT = "One moment."
_QUOTED = re.compile(r'"([^"]+)"')
_GREET = re.compile(r"\b(greet|greeting|introduce|welcome)\b", re.IGNORECASE)
_BYE = re.compile(r"\b(goodbye|bye|farewell|hang up|end the call)\b", re.IGNORECASE)
_SPEAK = re.compile(r"\b(say|speak|tell|ask|announce|repeat|answer)\b", re.IGNORECASE)


def spoken_for(content: str) -> str | None:
    """What an instruction asks the model to say now, or None for silent context: the first
    double-quoted sentence verbatim, else a greeting, a goodbye or a short answer."""
    if m := _QUOTED.search(content):
        return m.group(1)
    if _GREET.search(content):
        return GREETING
    if _BYE.search(content):
        return GOODBYE
    if _SPEAK.search(content):
        return REPLY
    return None


def _slice(text: str, i: int, parts: int) -> str:
    """The ``i``-th of ``parts`` pieces of ``text``, cut before a space (whole words, each with
    its leading space, as transcript deltas come): pieces may be empty, they join to ``text``."""

    def cut(n: int) -> int:
        at = len(text) * n // parts
        while 0 < at < len(text) and text[at] != " ":
            at += 1
        return at

    return text[cut(i) : cut(i + 1)]


class Speech:
    """Turn state lives on the session: ``speaking`` (the streaming turn and its task),
    ``clock_ms``/``output_end_ms`` (the timeline) and ``record["turns"]``."""

    speed: float
    record: dict[str, Any]
    clock_ms: float
    output_end_ms: float
    speaking: tuple[dict[str, Any], asyncio.Task] | None
    deferred: tuple[str, str] | None  # what to say once the playing fixture ends
    emit: Callable[[dict[str, Any]], Awaitable[None]]
    output_format: LiveFormat

    def speak(self, text: str, reason: str, audio: bytes | None = None) -> dict[str, Any] | None:
        """Start a turn saying ``text`` (``audio``: play these bytes instead of a tone, with no
        transcript: a fixture). A turn still streaming is replaced, except a fixture: what the
        model would say while one plays waits for its end (the latest request only); None."""
        if self.speaking is not None and self.speaking[0]["reason"] == "fixture":
            self.deferred = (text, reason)
            return None
        self.stop_speaking("replaced")
        start = max(self.clock_ms, self.output_end_ms)
        turn: dict[str, Any] = {
            "text": text,
            "reason": reason,
            "status": "speaking",
            "spoken": "",
            "audio_ms": 0.0,
            "start_ms": int(start),
        }
        self.record["turns"].append(turn)
        task = asyncio.get_running_loop().create_task(self._stream(turn, audio))
        self.speaking = (turn, task)
        return turn

    def stop_speaking(self, status: str) -> dict[str, Any] | None:
        """End the streaming turn now (``yielded``, ``replaced``, ``closed``); the turn."""
        if self.speaking is None:
            return None
        turn, task = self.speaking
        self.speaking = None
        task.cancel()
        turn["status"] = status
        self.output_end_ms = turn["start_ms"] + turn["audio_ms"]
        return turn

    async def wait_speech(self) -> None:
        """Until the current turn (if any) has streamed all of it."""
        if self.speaking is not None:
            await asyncio.gather(self.speaking[1], return_exceptions=True)

    async def _stream(self, turn: dict[str, Any], audio: bytes | None) -> None:
        fmt, text = self.output_format, turn["text"]
        per_chunk = fmt.bytes_per_ms * CHUNK_MS
        if audio is None:
            total_ms = max(500, MS_PER_CHAR * len(text))
            freq = 300 + 40 * (len(self.record["turns"]) % 6)
            audio = fmt.tone(total_ms, freq)
        chunks = max(1, -(-len(audio) // per_chunk))
        started, sent_ms = time.monotonic(), 0.0
        words_from = float(turn["start_ms"])  # a word's span starts where the last one ended
        for i in range(chunks):
            chunk = audio[i * per_chunk : (i + 1) * per_chunk]
            chunk_start = turn["start_ms"] + turn["audio_ms"]
            chunk_ms = len(chunk) / fmt.bytes_per_ms
            await self.emit(
                {"type": "session.output_audio.delta", "delta": base64.b64encode(chunk).decode()}
            )
            turn["audio_ms"] += chunk_ms
            words = _slice(text, i, chunks)
            if words and turn["reason"] != "fixture":
                turn["spoken"] += words
                await self.emit(
                    {
                        "type": "session.output_transcript.delta",
                        "delta": words,
                        "start_ms": int(words_from),
                        "end_ms": int(chunk_start + chunk_ms),
                    }
                )
                words_from = chunk_start + chunk_ms
            sent_ms += chunk_ms
            delay = started + sent_ms / 1000 / self.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        turn["status"] = "done"
        self.output_end_ms = turn["start_ms"] + turn["audio_ms"]
        if self.speaking is not None and self.speaking[0] is turn:
            self.speaking = None
        await self.after_turn(turn)

    async def after_turn(self, turn: dict[str, Any]) -> None:
        """Hook: a turn streamed to its end (the session ends a fixture here)."""
