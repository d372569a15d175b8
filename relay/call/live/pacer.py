"""The assistant's audio on GPT-Live, paced by the relay: at most :data:`AHEAD_MS` of it waits in
Twilio's buffer, the rest here.

GPT-Live has no cancel and no truncate: the model yields by itself when the caller talks over
it, but what it already generated still plays unless the bridge drops it. So the relay keeps
the queue: audio goes to Twilio only as fast as it plays (driven by the caller's own 20 ms
media frames and the relay's ticker), and when the caller barges in, Twilio is told to
``clear`` and the queue is dropped, so nothing stale is heard after an interruption.

Base64 is split without decoding: every 4 characters are 3 bytes, so a piece of
:data:`PIECE_CHARS` characters is whole μ-law samples (a padded tail stays last).
"""

from __future__ import annotations

from collections import deque

from relay.call.outputs import Output, ToTwilio
from relay.call.playback import PlaybackTracker, b64_decoded_len
from relay.protocol.twilio_media import StreamWriter

#: Assistant audio allowed to wait at Twilio: enough to ride out network jitter, little
#: enough that a barge-in leaves nothing stale behind.
AHEAD_MS = 200.0
#: 216 base64 characters = 162 μ-law bytes ≈ 20 ms, the size of Twilio's own frames.
PIECE_CHARS = 216
PCMU_BYTES_PER_MS = 8


class Pacer:
    def __init__(self, stream: StreamWriter, playback: PlaybackTracker):
        self.stream = stream
        self.playback = playback
        self._queue: deque[tuple[str, str]] = deque()  # (turn id, base64 piece)
        self.queued_ms = 0.0

    def add(self, turn_id: str, delta: str) -> None:
        """A ``session.output_audio.delta`` for the assistant's turn ``turn_id``."""
        for i in range(0, len(delta), PIECE_CHARS):
            piece = delta[i : i + PIECE_CHARS]
            self._queue.append((turn_id, piece))
            self.queued_ms += b64_decoded_len(piece) / PCMU_BYTES_PER_MS

    def release(self, out: list[Output], now: float) -> None:
        """Send what fits under :data:`AHEAD_MS` of unplayed audio at Twilio."""
        if not self._queue or not self.stream.sid:
            return
        ahead = sum(i.sent_ms - i.played_at(now) for i in self.playback.items.values())
        while self._queue and ahead < AHEAD_MS:
            turn_id, piece = self._queue.popleft()
            ms = b64_decoded_len(piece) / PCMU_BYTES_PER_MS
            self.queued_ms -= ms
            ahead += ms
            mark = self.playback.audio_sent(turn_id, turn_id, piece, now)
            out.append(ToTwilio(self.stream.media(piece)))
            if mark:
                out.append(ToTwilio(self.stream.mark(mark)))
        if not self._queue:
            self.queued_ms = 0.0
            for name in self.playback.flush_all():
                out.append(ToTwilio(self.stream.mark(name)))

    @property
    def waiting(self) -> bool:
        """Audio is queued here or not yet heard at Twilio."""
        return bool(self._queue)

    def unheard(self, now: float) -> bool:
        return bool(self._queue) or self.playback.unplayed(now)

    def drop(self, out: list[Output]) -> None:
        """The caller barged in: Twilio clears its buffer, the queue is dropped."""
        self._queue.clear()
        self.queued_ms = 0.0
        out.append(ToTwilio(self.stream.clear()))
        self.playback.clear()
        for item_id in list(self.playback.items):
            self.playback.forget(item_id)
