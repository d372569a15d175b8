"""The push side of the frame codec (:mod:`relay.wire.codec`): bytes in as the kernel hands
them over, messages out, for readers driven by the hub's readiness callbacks."""

from __future__ import annotations

from collections.abc import Iterator

from relay.wire.codec import (
    CLOSE_TOO_BIG,
    MAX_CONTROL_PAYLOAD,
    OP_TEXT,
    FrameError,
    MessageAssembler,
    check_text,
    frame_head,
    long_length,
    unmask,
)


class FrameBuffer:
    """The push side of the codec: bytes in as the kernel hands them over, messages out.

    :func:`read_frame` pulls with a blocking ``read(n)``; a reader driven by readiness
    callbacks (:mod:`relay.wire.hub_io`) cannot block, so it feeds whatever arrived and gets back
    every message (and control frame) completed so far, in order, with the same checks (the
    same :class:`MessageAssembler`). An incomplete frame's bytes wait here for the rest.

    A protocol error stops parsing: the messages before it are still returned, and
    :attr:`error` holds the :class:`FrameError` to close with. :attr:`rest` is then what
    followed the offending frame's header (an oversized frame's unread payload starts there).

    :meth:`parse` is :meth:`feed` one message at a time: a consumer that stops taking
    messages (the socket goes back to blocking reads) finds every byte after the last message
    it took in :attr:`rest`, and the assembler has seen none of them.
    """

    __slots__ = ("_buf", "_pos", "assembler", "error")

    def __init__(self, assembler: MessageAssembler, data: bytes = b""):
        self.assembler = assembler
        self._buf = data
        self._pos = 0  # bytes of _buf already parsed
        self.error: FrameError | None = None

    @property
    def rest(self) -> bytes:
        """Bytes received but not yet part of a returned frame."""
        return self._buf[self._pos :] if self._pos else self._buf

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        return list(self.parse(data))

    def parse(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        if self.error is not None:
            return
        rest = self.rest
        buf = rest + data if rest else data
        self._buf, self._pos = buf, 0
        n, pos = len(buf), 0
        assembler = self.assembler
        masked = assembler.masked
        whole = 0x80 if masked else 0  # the second byte's mask bit this side must see
        try:
            while n - pos >= 2:
                b0, b1 = buf[pos], buf[pos + 1]
                # Nearly every frame is a whole text message (a media message, a Realtime
                # event): its header passes every check of frame_head, and outside a
                # fragmented message its budget is the assembler's whole limit.
                whole_text = b0 == 0x81 and b1 & 0x80 == whole and not assembler._opcode
                if whole_text:
                    fin, opcode, has_mask, length = True, OP_TEXT, masked, b1 & 0x7F
                else:
                    fin, opcode, has_mask, length = frame_head(b0, b1, masked)
                start = pos + 2 + (2 if length == 126 else 8 if length == 127 else 0)
                if has_mask:
                    start += 4
                if start > n:
                    break
                if length >= 126:
                    length = long_length(length, buf[pos + 2 : start])
                if length > (
                    max(assembler.max_bytes, MAX_CONTROL_PAYLOAD) if whole_text
                    else assembler.budget()
                ):  # fmt: skip
                    pos = start
                    raise FrameError(CLOSE_TOO_BIG, "message_too_big", unread=length)
                end = start + length
                if end > n:
                    break
                payload = buf[start:end]
                if has_mask:
                    payload = unmask(payload, buf[start - 4 : start])
                pos = end
                if whole_text:
                    if not payload.isascii():
                        check_text(payload)
                    self._pos = pos
                    yield OP_TEXT, payload
                    continue
                got = assembler.add(fin, opcode, payload)
                if got is not None:
                    self._pos = pos
                    yield got
        except FrameError as exc:
            self.error = exc
        self._buf, self._pos = (buf[pos:] if pos < n else b""), 0
