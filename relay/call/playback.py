"""What the caller has actually heard, from Twilio's mark echoes.

Twilio buffers the audio we send and plays it in real time; it echoes a ``mark`` once the audio
before it has played. Bytes *sent* are not audio *heard*, and a truncate beyond what the model
produced is rejected ("Audio content of X ms is already shorter than Y ms"), so barge-in needs
the played position. Marks give it at chunk granularity; between echoes we advance the position
on the wall clock, the way Twilio's player does, never past the audio sent.

Pure bookkeeping: times are passed in (seconds, monotonic), nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: G.711 μ-law at 8 kHz: one byte per sample, eight samples per millisecond.
PCMU_BYTES_PER_MS = 8
#: One mark per this much audio, not one per delta: OpenAI's deltas can be a few ms each, and
#: every mark is a frame each way. Between echoes the clock interpolates (see played_at), so
#: barge-in stays as accurate; the end of an audio item always gets a mark (:meth:`flush`).
MARK_EVERY_MS = 100.0


def b64_decoded_len(b64: str) -> int:
    """Length of the bytes a base64 string decodes to, without decoding it."""
    n = len(b64)
    if n == 0:
        return 0
    pad = 2 if b64.endswith("==") else 1 if b64.endswith("=") else 0
    return n * 3 // 4 - pad


@dataclass
class Chunk:
    mark: str
    start_ms: float
    end_ms: float
    sent_at: float
    open: bool = True  # more deltas may join it; its mark is not sent yet


@dataclass
class ItemPlayback:
    """Playout of one assistant audio item."""

    item_id: str
    response_id: str
    sent_ms: float = 0.0
    played_ms: float = 0.0
    #: When the last echoed mark arrived (playback position known exactly then).
    echo_at: float | None = None
    chunks: list[Chunk] = field(default_factory=list)

    def played_at(self, now: float) -> float:
        """Estimated ms of this item heard by ``now``, within [played_ms, sent_ms]."""
        pos = self.played_ms
        cursor = self.echo_at
        for chunk in self.chunks:
            if chunk.end_ms <= pos:
                continue
            start = chunk.sent_at if cursor is None else max(cursor, chunk.sent_at)
            if now <= start:
                break
            length = chunk.end_ms - max(chunk.start_ms, pos)
            elapsed_ms = (now - start) * 1000.0
            if elapsed_ms < length:
                return max(chunk.start_ms, pos) + elapsed_ms
            pos = chunk.end_ms
            cursor = start + length / 1000.0
        return min(pos, self.sent_ms)


class PlaybackTracker:
    """Marks sent, echoed and cleared, per assistant item."""

    def __init__(self) -> None:
        self._seq = 0
        self.items: dict[str, ItemPlayback] = {}
        self._marks: dict[str, ItemPlayback] = {}
        self._cleared: set[str] = set()
        #: Special marks (e.g. "the voicemail has fully played") by name → purpose.
        self.sentinels: dict[str, str] = {}

    def audio_sent(
        self, item_id: str, response_id: str, payload_b64: str, now: float
    ) -> str | None:
        """Record a delta sent to Twilio; the unique name of the mark to send after it once
        :data:`MARK_EVERY_MS` of audio went without one, else None."""
        item = self.items.get(item_id)
        if item is None:
            item = self.items[item_id] = ItemPlayback(item_id, response_id)
        start = item.sent_ms
        item.sent_ms += b64_decoded_len(payload_b64) / PCMU_BYTES_PER_MS
        chunk = item.chunks[-1] if item.chunks and item.chunks[-1].open else None
        if chunk is None:
            self._seq += 1
            chunk = Chunk(f"a{self._seq}", start, item.sent_ms, now)
            item.chunks.append(chunk)
            self._marks[chunk.mark] = item
        chunk.end_ms = item.sent_ms
        if chunk.end_ms - chunk.start_ms >= MARK_EVERY_MS - 1e-6:
            chunk.open = False
            return chunk.mark
        return None

    def flush(self, response_id: str) -> list[str]:
        """The marks still owed for a response whose audio is complete (send them now)."""
        names = []
        for item in self.items.values():
            if item.response_id == response_id and item.chunks and item.chunks[-1].open:
                item.chunks[-1].open = False
                names.append(item.chunks[-1].mark)
        return names

    def flush_all(self) -> list[str]:
        """The marks still owed for every item (all audio sent so far is complete)."""
        names = []
        for item in self.items.values():
            if item.chunks and item.chunks[-1].open:
                item.chunks[-1].open = False
                names.append(item.chunks[-1].mark)
        return names

    def forget_played(self, now: float, keep: str = "") -> None:
        """Drop the books of items heard in full (but ``keep``), so they do not pile up."""
        for item_id, item in list(self.items.items()):
            if item_id != keep and item.played_at(now) >= item.sent_ms - 1e-6:
                del self.items[item_id]

    def sentinel(self, purpose: str) -> str:
        """A mark whose echo means everything sent before it has played."""
        self._seq += 1
        name = f"s{self._seq}:{purpose}"
        self.sentinels[name] = purpose
        return name

    def echoed(self, name: str, now: float) -> str | None:
        """Handle a mark echo. Returns a sentinel's purpose when one played, else None.
        Echoes of marks flushed by ``clear`` are ignored: Twilio sends them without playing."""
        if name in self._cleared:
            self._cleared.discard(name)
            return None
        purpose = self.sentinels.pop(name, None)
        if purpose is not None:
            return purpose
        item = self._marks.pop(name, None)
        if item is None:
            return None  # unknown or late mark: tolerated
        for i, chunk in enumerate(item.chunks):
            if chunk.mark == name:
                item.played_ms = max(item.played_ms, chunk.end_ms)
                item.echo_at = now
                del item.chunks[: i + 1]
                break
        return None

    def unplayed(self, now: float) -> bool:
        """True while any sent audio has probably not been heard yet."""
        return any(item.played_at(now) < item.sent_ms - 1e-6 for item in self.items.values())

    def heard_fraction(self, response_id: str, now: float) -> float:
        """How much of a response's audio sent so far the caller has heard (0-1)."""
        items = [i for i in self.items.values() if i.response_id == response_id]
        sent = sum(i.sent_ms for i in items)
        return sum(i.played_at(now) for i in items) / sent if sent else 0.0

    def clear(self) -> None:
        """Twilio's buffer is being emptied: every pending mark will echo without playing."""
        self._cleared.update(self._marks)
        self._cleared.update(self.sentinels)
        self._marks.clear()
        self.sentinels.clear()
        for item in self.items.values():
            item.chunks.clear()

    def forget(self, item_id: str) -> None:
        self.items.pop(item_id, None)
