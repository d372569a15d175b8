"""How the simulated model answers: the reply's text, its audio and transcript streamed at a
real-time pace (divided by ``speed``), and a cancel that ends it as the real service does.

A mixin of :class:`sandbox.realtime_sim.session.Session`, kept apart so the session module
stays about the protocol (session shape, input audio, items) and this one about responses.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.realtime_sim.audio import PCM24, Format

CHUNK_MS = 100
MS_PER_CHAR = 60
CANNED = "This is the GateFrames assistant. How can I help with your gate?"
_SAY = re.compile(r'(?:say exactly|by saying:?)\s*"([^"]+)"', re.IGNORECASE)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


class Responses:
    """Response state lives on the session: ``active`` (the streaming task), ``active_id``,
    ``items``, ``audio_sent_ms`` and the ``record`` shown by ``/_sandbox/sessions``."""

    speed: float
    config: dict[str, Any]
    items: list[dict[str, Any]]
    audio_sent_ms: dict[str, float]
    active: asyncio.Task | None
    active_id: str | None
    record: dict[str, Any]
    emit: Callable[[dict[str, Any]], Awaitable[None]]
    output_format: Format

    def reply_text(self, params: dict[str, Any]) -> str:
        sources = [str(params.get("instructions") or "")]
        if params.get("conversation") != "none":
            for item in reversed(self.items):
                if item.get("role") == "user":
                    sources += [
                        str(c.get("text") or "")
                        for c in item.get("content") or []
                        if c.get("type") == "input_text"
                    ]
                    break
        for text in sources:
            if m := _SAY.search(text):
                return m.group(1)
        return CANNED

    async def start_response(self, params: dict[str, Any], eid: Any) -> None:
        response_id, item_id = new_id("resp"), new_id("item")
        text = self.reply_text(params)
        modalities = params.get("output_modalities") or self.config["output_modalities"]
        record = {
            "id": response_id,
            "item_id": item_id,
            "status": "in_progress",
            "text": text,
            "audio_ms_sent": 0,
            "instructions": params.get("instructions"),
        }
        self.record["responses"].append(record)
        self.active_id = response_id
        self.active = asyncio.get_running_loop().create_task(
            self._stream(response_id, item_id, text, "audio" in modalities, record)
        )

    async def cancel(self, reason: str) -> None:
        task, self.active = self.active, None
        if task is None:
            return
        self.record["cancels"] += 1
        task.cancel()
        record = next(r for r in self.record["responses"] if r["id"] == self.active_id)
        record["status"] = "cancelled"
        output = []
        if "spoken" in record:
            # As the real service does: the interrupted item ends "incomplete", carrying what
            # was generated so far, in output_item.done and in response.done's output.
            content = (
                {"type": "output_audio", "transcript": record["spoken"]}
                if record["audio"]
                else {"type": "output_text", "text": record["spoken"]}
            )
            item = {
                "id": record["item_id"],
                "type": "message",
                "role": "assistant",
                "status": "incomplete",
                "content": [content],
            }
            output.append(item)
            await self.emit(
                {
                    "type": "response.output_item.done",
                    "response_id": self.active_id,
                    "output_index": 0,
                    "item": item,
                }
            )
        await self.emit(
            {
                "type": "response.done",
                "response": {
                    "id": self.active_id,
                    "object": "realtime.response",
                    "status": "cancelled",
                    "status_details": {"type": "cancelled", "reason": reason},
                    "output": output,
                },
            }
        )

    async def _stream(
        self, response_id: str, item_id: str, text: str, audio: bool, record: dict[str, Any]
    ) -> None:
        base = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress"}
        await self.emit(
            {
                "type": "response.created",
                "response": {
                    "id": response_id,
                    "object": "realtime.response",
                    "status": "in_progress",
                },
            }
        )
        await self.emit(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        await self.emit({"type": "conversation.item.added", "item": item})
        part = {"type": "audio" if audio else "text"}
        await self.emit(
            {"type": "response.content_part.added", **base, "content_index": 0, "part": part}
        )
        total_ms = max(500, MS_PER_CHAR * len(text))
        fmt = self.output_format if audio else PCM24
        freq = 300 + 40 * (len(self.record["responses"]) % 6)
        pcm = fmt.tone(total_ms, freq) if audio else b""
        chunks = max(1, -(-total_ms // CHUNK_MS))
        started = time.monotonic()
        self.audio_sent_ms[item_id] = 0.0
        per_chunk = fmt.bytes_per_ms * CHUNK_MS
        record["audio"], record["spoken"] = audio, ""
        for i in range(chunks):
            words = text[len(text) * i // chunks : len(text) * (i + 1) // chunks]
            record["spoken"] += words
            if audio:
                chunk = pcm[i * per_chunk : (i + 1) * per_chunk]
                await self.emit(
                    {
                        "type": "response.output_audio.delta",
                        **base,
                        "content_index": 0,
                        "delta": base64.b64encode(chunk).decode(),
                    }
                )
                self.audio_sent_ms[item_id] += len(chunk) / fmt.bytes_per_ms
                record["audio_ms_sent"] = self.audio_sent_ms[item_id]
                kind = "response.output_audio_transcript.delta"
            else:
                kind = "response.output_text.delta"
            await self.emit({"type": kind, **base, "content_index": 0, "delta": words})
            delay = started + (i + 1) * CHUNK_MS / 1000 / self.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if audio:
            await self.emit({"type": "response.output_audio.done", **base, "content_index": 0})
            await self.emit(
                {
                    "type": "response.output_audio_transcript.done",
                    **base,
                    "content_index": 0,
                    "transcript": text,
                }
            )
        else:
            await self.emit(
                {"type": "response.output_text.done", **base, "content_index": 0, "text": text}
            )
        done_item = {
            **item,
            "status": "completed",
            "content": [{"type": "output_audio" if audio else "output_text", "transcript": text}],
        }
        await self.emit(
            {"type": "response.content_part.done", **base, "content_index": 0, "part": part}
        )
        await self.emit(
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": done_item,
            }
        )
        await self.emit({"type": "conversation.item.done", "item": done_item})
        self.items.append(done_item)
        self.active = None
        record["status"] = "completed"
        await self.emit(
            {
                "type": "response.done",
                "response": {
                    "id": response_id,
                    "object": "realtime.response",
                    "status": "completed",
                    "status_details": None,
                    "output": [done_item],
                    "usage": {
                        "total_tokens": len(text),
                        "input_tokens": 0,
                        "output_tokens": len(text),
                    },
                },
            }
        )
