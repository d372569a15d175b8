"""How the simulated Live model listens: caller speech in the input audio, its transcript, and
the turn that follows.

A mixin of :class:`sandbox.live_sim.session.Session`. ``session.input_audio.append`` carries the
caller's audio in the session's format; an energy VAD (:class:`sandbox.realtime_sim.audio.Vad`,
the detector the Realtime simulator runs, so the phone simulator's tone is speech to both) finds
where speech starts and stops (after 500 ms of silence) on the input audio clock, the session
timeline. While the input is muted (``session.input_audio.mute``) or a fixture plays, audio
advances the clock but is not heard.

- Speech starts: a model turn still streaming yields (:meth:`Speech.stop_speaking`), and the
  turn's words are taken from the script (``/_sandbox/caller_says``).
- While the caller talks: one ``session.input_transcript.delta`` per 300 ms of speech, a word
  each (``"Can"``, ``" you"``, ...), with its ``start_ms``/``end_ms`` (every word but the last).
- Speech stops: the remaining words, spread to the end of the speech; unscripted speech is one
  delta ``(caller spoke 1.2 s)``. Then the model answers (:meth:`Listening.caller_turn`): a
  delegation when ``responses`` delegation picks a tool, else the spoken ``REPLY``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.live_sim import schema
from sandbox.live_sim.audio import LiveFormat
from sandbox.live_sim.script import Script
from sandbox.live_sim.speech import REPLY
from sandbox.realtime_sim.audio import Vad
from sandbox.realtime_sim.session import BARGE_IN_MAGIC, STAMP_MAGIC

WORD_MS = 300  # one transcript word per this much speech while the caller talks


class Listening:
    record: dict[str, Any]
    script: Script
    vad: Vad
    clock_ms: float
    muted: bool
    fixture_playing: bool
    echo: bool
    speaking: Any
    heard: dict[str, Any] | None  # the caller turn being transcribed
    output_format: LiveFormat
    delegation_type: str
    emit: Callable[..., Awaitable[None]]
    stop_speaking: Callable[[str], Any]
    speak: Callable[..., dict[str, Any]]
    pick_calls: Callable[[str | None], list[dict[str, Any]]]
    delegate: Callable[[list[dict[str, Any]]], Awaitable[dict[str, Any]]]

    async def on_session_input_audio_append(self, event: dict[str, Any], eid: Any) -> None:
        data = schema.decode_audio(event["audio"]) or b""
        fmt = self.output_format  # one format both ways
        self.record["audio_in_ms"] += len(data) / fmt.bytes_per_ms
        if self.echo:
            await self._echo(data)
            return
        if self.muted or self.fixture_playing:
            self.vad.cursor_ms += len(data) / fmt.bytes_per_ms  # time passes, unheard
            self.clock_ms = self.vad.cursor_ms
            return
        for what, at_ms in self.vad.feed(fmt, data):
            if what == "started":
                await self._caller_started(at_ms)
            else:
                await self._caller_stopped(at_ms)
        self.clock_ms = self.vad.cursor_ms
        if self.heard is not None:
            await self._words_due(final=False)

    async def _caller_started(self, at_ms: int) -> None:
        self.record["speech"].append({"started_ms": at_ms, "stopped_ms": None})
        if self.speaking is not None and self.speaking[0]["reason"] != "fixture":
            self.stop_speaking("yielded")  # full duplex: the model yields by itself
        text = self.script.caller_says.popleft() if self.script.caller_says else None
        words = [w if i == 0 else " " + w for i, w in enumerate((text or "").split())]
        self.heard = {"text": text, "words": words, "sent": 0, "from_ms": self.vad.speech_start_ms}

    async def _words_due(self, final: bool, end_ms: float | None = None) -> None:
        heard = self.heard
        assert heard is not None
        words, start = heard["words"], heard["from_ms"]
        due = (
            len(words)
            if final
            else min(len(words) - 1, int((self.vad.cursor_ms - start) // WORD_MS))
        )
        while heard["sent"] < due:
            i = heard["sent"]
            left = len(words) - i
            span = WORD_MS if not final or end_ms is None else max(1.0, (end_ms - start) / left)
            await self.emit(
                {
                    "type": "session.input_transcript.delta",
                    "delta": words[i],
                    "start_ms": int(start),
                    "end_ms": int(start + span),
                }
            )
            heard["sent"], heard["from_ms"] = i + 1, start + span
            start += span

    async def _caller_stopped(self, at_ms: int) -> None:
        heard = self.heard
        if heard is None:
            return
        self.record["speech"][-1]["stopped_ms"] = at_ms
        spoken_s = (at_ms - self.vad.silence_ms - self.vad.speech_start_ms) / 1000
        if heard["text"] is None:
            heard["words"] = [f"(caller spoke {max(0.0, spoken_s):.1f} s)"]
        talk_end = at_ms - self.vad.silence_ms
        first = self.vad.speech_start_ms
        await self._words_due(final=True, end_ms=talk_end)
        self.heard = None
        text = heard["text"] or heard["words"][0]
        self.record["caller_turns"].append({"text": text, "start_ms": int(first),
                                            "end_ms": int(talk_end)})  # fmt: skip
        await self.caller_turn(text)

    async def caller_turn(self, text: str | None) -> None:
        """The caller finished a turn: delegate it (tool calls) or answer in words."""
        if self.delegation_type == "responses":
            calls = self.pick_calls(text)
            if calls:
                await self.delegate(calls)
                return
        self.speak(REPLY, "reply")

    async def _echo(self, data: bytes) -> None:
        """``--echo`` (relay tests and benchmarks): every chunk comes straight back as
        ``session.output_audio.delta``; a benchmark's timestamped frame (``GFTS``) gets our
        receive time, and its barge-in frame (``GFBI``) is answered as a caller talking over
        the model: a ``session.input_transcript.delta`` and no audio."""
        at = int(self.clock_ms)
        self.clock_ms += len(data) / self.output_format.bytes_per_ms
        if data[:4] == BARGE_IN_MAGIC:
            self.record.setdefault("barge_in_sent_ns", []).append(time.monotonic_ns())
            await self.emit({"type": "session.input_transcript.delta", "delta": "(barge-in)",
                             "start_ms": at, "end_ms": int(self.clock_ms)})  # fmt: skip
            return
        if data[:4] == STAMP_MAGIC and len(data) >= 20:
            data = data[:12] + time.monotonic_ns().to_bytes(8, "big") + data[20:]
        await self.emit(
            {"type": "session.output_audio.delta", "delta": base64.b64encode(data).decode()}
        )
