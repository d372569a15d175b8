"""The assistant's audio on its way to the caller: deltas to Twilio with marks, and the two
ways it is cut short, barge-in and the time cap.

Twilio plays what it is sent in real time and echoes a ``mark`` once the audio before it has
played (:mod:`relay.call.playback` keeps the books). When the caller talks over the assistant
(``input_audio_buffer.speech_started``), Twilio's buffer is cleared, the active response is
cancelled, and each audio item is truncated at what the caller actually heard, so the model's
memory of the call matches the caller's. Sans-I/O: it returns the messages to send.
"""

from __future__ import annotations

from typing import Any

from relay.call.ledger import ResponseLedger
from relay.call.outputs import Output, ToTwilio, to_openai
from relay.call.phase import Phase
from relay.call.playback import PlaybackTracker
from relay.protocol import realtime
from relay.protocol.twilio_media import StreamWriter


class Playout:
    def __init__(
        self,
        *,
        stream: StreamWriter,
        playback: PlaybackTracker,
        ledger: ResponseLedger,
        phase: Phase,
    ):
        self.stream = stream
        self.playback = playback
        self.ledger = ledger
        self.phase = phase
        self.barge_ins = 0

    def on_delta(self, out: list[Output], event: dict[str, Any], now: float) -> None:
        """``response.output_audio.delta``: the audio to Twilio, and a mark every ~100 ms."""
        response_id = str(event.get("response_id") or "")
        delta = event.get("delta")
        if response_id in self.ledger.discarded or not isinstance(delta, str):
            return  # late audio of an interrupted response must never reach the caller
        if not self.stream.sid:
            return  # no stream to play it on yet
        item_id = str(event.get("item_id") or response_id)
        mark = self.playback.audio_sent(item_id, response_id, delta, now)
        out.append(ToTwilio(self.stream.media(delta)))
        if mark:
            out.append(ToTwilio(self.stream.mark(mark)))

    def flush_marks(self, out: list[Output], response_id: str) -> None:
        """The audio is complete: its last, short chunk gets its mark now."""
        for name in self.playback.flush(response_id):
            out.append(ToTwilio(self.stream.mark(name)))

    def sentinel(self, out: list[Output], purpose: str) -> None:
        """A mark whose echo means everything sent before it has played."""
        out.append(ToTwilio(self.stream.mark(self.playback.sentinel(purpose))))

    def barge_in(self, out: list[Output], now: float) -> None:
        """The caller started talking: stop what they have not heard yet."""
        if not self.phase.talking:
            return  # no barge-in over a closing line
        ledger = self.ledger
        if not self.playback.unplayed(now) and ledger.active is None:
            return
        self.barge_ins += 1
        truncations = []
        for item in list(self.playback.items.values()):
            heard = item.played_at(now)
            if heard < item.sent_ms - 1e-6:
                if item.item_id not in ledger.stale_items:  # a dead session's item: not there
                    truncations.append((item.item_id, round(max(0.0, min(heard, item.sent_ms)))))
                fraction = heard / item.sent_ms if item.sent_ms else 0.0
                ledger.cut(item.response_id, f"interrupted at {heard / 1000:.1f} s", fraction)
            ledger.discard(item.response_id)
        out.append(ToTwilio(self.stream.clear()))
        self.playback.clear()
        if ledger.active is not None:
            ledger.discard(ledger.active)
            out.append(to_openai(realtime.response_cancel()))
        for item_id, end_ms in truncations:
            out.append(to_openai(realtime.truncate(item_id, end_ms)))
        for item_id in list(self.playback.items):
            self.playback.forget(item_id)

    def cut_active(self, out: list[Output], now: float, how: str) -> None:
        """Stop the active response now (the time cap): clear Twilio, cancel it."""
        rid = self.ledger.active
        if rid is None:
            return
        self.ledger.discard(rid)
        self.ledger.cut(rid, how, self.playback.heard_fraction(rid, now))
        out.append(ToTwilio(self.stream.clear()))
        self.playback.clear()
        out.append(to_openai(realtime.response_cancel()))
