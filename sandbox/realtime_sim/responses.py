"""How the simulated model answers: the reply's text, its audio and transcript streamed at a
real-time pace (divided by ``speed``), and a cancel that ends it as the real service does.

A mixin of :class:`sandbox.realtime_sim.session.Session`, kept apart so the session module
stays about the protocol (session shape, input audio, items) and this one about responses.

As in the GA API, the default conversation has at most one response at a time, while
out-of-band responses (``response.create`` with ``response.conversation: "none"``) run beside
it: they are not added to the conversation, cannot be truncated, and speech does not cancel
them. Every response that produced an item ends it the documented way, cancelled ones too:
``output_audio.done`` and ``output_audio_transcript.done`` (with what was said so far), then
``content_part.done``, ``output_item.done`` and ``response.done``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sandbox.realtime_sim.audio import PCM24, Format

CHUNK_MS = 100
MS_PER_CHAR = 60
CANNED = "This is the GateFrames assistant. How can I help with your gate?"
_SAY = re.compile(r'(?:say exactly|by saying:?)\s*"([^"]+)"', re.IGNORECASE)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


@dataclass
class Faults:
    """Response failures the control API injects (``/_sandbox/faults?fail_responses=N``):
    the next N responses, in any session, end ``failed`` before any output, as a rate limit
    or server error ends them."""

    fail_responses: int = 0
    fail_type: str = "server_error"
    fail_code: str = "server_error"
    fail_message: str = "The server had an error while processing your request. Sorry about that!"

    def reset(self) -> None:
        self.__dict__.update(Faults().__dict__)

    def take(self) -> dict[str, Any] | None:
        """The ``status_details`` of a failure to inject now, if one is pending."""
        if self.fail_responses <= 0:
            return None
        self.fail_responses -= 1
        error = {"type": self.fail_type, "code": self.fail_code, "message": self.fail_message}
        return {"type": "failed", "error": error}


class Responses:
    """Response state lives on the session: ``running`` (streaming tasks by response id),
    ``active_id`` (the default conversation's response), ``items``, ``audio_sent_ms`` and
    the ``record`` shown by ``/_sandbox/sessions``."""

    speed: float
    config: dict[str, Any]
    items: list[dict[str, Any]]
    audio_sent_ms: dict[str, float]
    running: dict[str, asyncio.Task]
    active_id: str | None
    conversation_id: str
    faults: Faults
    record: dict[str, Any]
    emit: Callable[[dict[str, Any]], Awaitable[None]]
    output_format: Format

    def reply_text(self, params: dict[str, Any]) -> str:
        after_tool = self.tool_reply()  # type: ignore[attr-defined]
        if after_tool and not _SAY.search(str(params.get("instructions") or "")):
            return after_tool
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

    def _record_of(self, response_id: str) -> dict[str, Any]:
        return next(r for r in self.record["responses"] if r["id"] == response_id)

    async def start_response(self, params: dict[str, Any], eid: Any) -> None:
        response_id, item_id = new_id("resp"), new_id("item")
        in_conversation = params.get("conversation") != "none"
        tool = self.pick_tool(params) if in_conversation else None  # type: ignore[attr-defined]
        text = "" if tool else self.reply_text(params)
        modalities = params.get("output_modalities") or self.config["output_modalities"]
        audio = "audio" in modalities
        record = {
            "id": response_id,
            "item_id": item_id,
            "status": "in_progress",
            "conversation": "auto" if in_conversation else "none",
            "text": text,
            "audio": audio,
            "spoken": "",
            "audio_ms_sent": 0,
            "instructions": params.get("instructions"),
        }
        self.record["responses"].append(record)
        response = {
            "id": response_id,
            "object": "realtime.response",
            "status": "in_progress",
            "status_details": None,
            "conversation_id": self.conversation_id if in_conversation else None,
            "output_modalities": ["audio" if audio else "text"],
            "output": [],
        }
        if in_conversation:
            self.active_id = response_id  # before any await: a second create is refused
        await self.emit({"type": "response.created", "response": response})
        failure = self.faults.take()
        if failure is not None:
            if self.active_id == response_id:
                self.active_id = None
            record.update(status="failed", status_details=failure)
            done = {**response, "status": "failed", "status_details": failure}
            await self.emit({"type": "response.done", "response": done})
            return
        if tool is not None:
            self.active_id = None if self.active_id == response_id else self.active_id
            await self.call_tool(response, record, *tool)  # type: ignore[attr-defined]
            return
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress"}
        item["content"] = []
        await self.emit(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        if in_conversation:
            await self.emit({"type": "conversation.item.added", "item": item})
            self.audio_sent_ms[item_id] = 0.0  # only conversation items can be truncated
        part = {"type": "audio" if audio else "text", "transcript" if audio else "text": ""}
        base = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        await self.emit(
            {"type": "response.content_part.added", **base, "content_index": 0, "part": part}
        )
        self.running[response_id] = asyncio.get_running_loop().create_task(
            self._stream(response, record)
        )

    async def cancel(self, reason: str, response_id: str | None = None) -> bool:
        """Cancel ``response_id`` (default: the conversation's response). False if none."""
        response_id = response_id or self.active_id
        task = self.running.pop(response_id or "", None)
        if task is None or response_id is None:
            return False
        if response_id == self.active_id:
            self.active_id = None
        self.record["cancels"] += 1
        task.cancel()
        response = {"id": response_id, "object": "realtime.response"}
        details = {"type": "cancelled", "reason": reason}
        await self._finish(response, self._record_of(response_id), "cancelled", details)
        return True

    async def _stream(self, response: dict[str, Any], record: dict[str, Any]) -> None:
        response_id, item_id, text = response["id"], record["item_id"], record["text"]
        base = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        audio = record["audio"]
        total_ms = max(500, MS_PER_CHAR * len(text))
        fmt = self.output_format if audio else PCM24
        freq = 300 + 40 * (len(self.record["responses"]) % 6)
        pcm = fmt.tone(total_ms, freq) if audio else b""
        chunks = max(1, -(-total_ms // CHUNK_MS))
        started = time.monotonic()
        per_chunk = fmt.bytes_per_ms * CHUNK_MS
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
                record["audio_ms_sent"] += len(chunk) / fmt.bytes_per_ms
                if item_id in self.audio_sent_ms:
                    self.audio_sent_ms[item_id] = record["audio_ms_sent"]
                kind = "response.output_audio_transcript.delta"
            else:
                kind = "response.output_text.delta"
            await self.emit({"type": kind, **base, "content_index": 0, "delta": words})
            delay = started + (i + 1) * CHUNK_MS / 1000 / self.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        self.running.pop(response_id, None)
        if self.active_id == response_id:
            self.active_id = None
        await self._finish(response, record, "completed", None)

    async def _finish(
        self,
        response: dict[str, Any],
        record: dict[str, Any],
        status: str,
        details: dict[str, Any] | None,
    ) -> None:
        """End the response's item and the response, with what was said so far."""
        response_id, item_id, said = response["id"], record["item_id"], record["spoken"]
        base = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        record["status"] = status
        if record["audio"]:
            content = {"type": "output_audio", "transcript": said}
            part = {"type": "audio", "transcript": said}
            await self.emit({"type": "response.output_audio.done", **base, "content_index": 0})
            await self.emit(
                {
                    "type": "response.output_audio_transcript.done",
                    **base,
                    "content_index": 0,
                    "transcript": said,
                }
            )
        else:
            content = {"type": "output_text", "text": said}
            part = {"type": "text", "text": said}
            await self.emit(
                {"type": "response.output_text.done", **base, "content_index": 0, "text": said}
            )
        await self.emit(
            {"type": "response.content_part.done", **base, "content_index": 0, "part": part}
        )
        item = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            # An interrupted item ends "incomplete", carrying what was generated so far.
            "status": "completed" if status == "completed" else "incomplete",
            "content": [content],
        }
        await self.emit(
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        in_conversation = record["conversation"] != "none"
        if in_conversation:
            await self.emit({"type": "conversation.item.done", "item": item})
            self.items.append(item)
        done = {
            **response,
            "status": status,
            "status_details": details,
            "conversation_id": self.conversation_id if in_conversation else None,
            "output_modalities": ["audio" if record["audio"] else "text"],
            "output": [item],
            "usage": {"total_tokens": len(said), "input_tokens": 0, "output_tokens": len(said)},
        }
        await self.emit({"type": "response.done", "response": done})
