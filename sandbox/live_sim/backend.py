"""The simulated Responses backend of a ``responses`` delegation: its streaming events.

Each is wrapped in a Live ``response.event`` ``{delegation_id, event}``; the inner events have the
shapes of ``openai.types.responses`` (``ResponseStreamEvent``) with a ``sequence_number``
counting from 0 in each response. Lifecycle snapshots (``response.created``,
``response.in_progress``, ``response.completed``) carry ``output: []``, ``tools: []`` and no
instructions, as the Live service trims them: the content is in the item events.

- :func:`function_calls`: ``response.created``, ``response.in_progress``, then per call
  ``response.output_item.added`` (``function_call``, ``in_progress``, empty arguments),
  ``response.function_call_arguments.delta``… and ``.done``, ``response.output_item.done``
  (``status: "completed"`` with ``call_id``, ``name``, ``arguments``), then
  ``response.completed``.
- :func:`message`: the same lifecycle around one assistant ``message`` item whose text
  streams as ``response.output_text.delta``… (what the Live model then says).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.live_sim.config import new_id

ARG_CHUNK = 16  # characters per arguments delta
TEXT_CHUNK = 24  # characters per text delta
Emit = Callable[[dict[str, Any]], Awaitable[None]]


class _Stream:
    def __init__(self, emit_event: Emit, response_id: str, backend: dict[str, Any]):
        self.emit_event, self.seq = emit_event, 0
        self.snapshot: dict[str, Any] = {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "model": backend.get("model") or "gpt-5",
            "status": "in_progress",
            "output": [],
            "parallel_tool_calls": backend.get("parallel_tool_calls") is not False,
            "tool_choice": backend.get("tool_choice") or "auto",
            "tools": [],
            "instructions": None,
            "error": None,
            "incomplete_details": None,
        }

    async def send(self, kind: str, **fields: Any) -> None:
        await self.emit_event({"type": kind, "sequence_number": self.seq, **fields})
        self.seq += 1

    async def start(self) -> None:
        await self.send("response.created", response=dict(self.snapshot))
        await self.send("response.in_progress", response=dict(self.snapshot))

    async def complete(self, output_chars: int) -> None:
        usage = {
            "input_tokens": 0,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_chars // 4 + 1,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": output_chars // 4 + 1,
        }
        done = {**self.snapshot, "status": "completed", "usage": usage}
        await self.send("response.completed", response=done)


async def function_calls(
    emit_event: Emit, response_id: str, backend: dict[str, Any], calls: list[dict[str, Any]]
) -> None:
    """Stream a response making ``calls`` (each ``{call_id, name, arguments}``, arguments a
    JSON string)."""
    stream = _Stream(emit_event, response_id, backend)
    await stream.start()
    for index, call in enumerate(calls):
        item_id = new_id("fc")
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "call_id": call["call_id"],
            "name": call["name"],
            "arguments": "",
        }
        await stream.send("response.output_item.added", output_index=index, item=item)
        arguments = call["arguments"]
        for i in range(0, len(arguments), ARG_CHUNK):
            await stream.send(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=index,
                delta=arguments[i : i + ARG_CHUNK],
            )
        await stream.send(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=index,
            arguments=arguments,
        )
        done = {**item, "status": "completed", "arguments": arguments}
        await stream.send("response.output_item.done", output_index=index, item=done)
    await stream.complete(sum(len(c["arguments"]) for c in calls))


async def message(emit_event: Emit, response_id: str, backend: dict[str, Any], text: str) -> None:
    """Stream a response answering in words: ``text``."""
    stream = _Stream(emit_event, response_id, backend)
    await stream.start()
    item_id = new_id("msg")
    item: dict[str, Any] = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    base = {"item_id": item_id, "output_index": 0, "content_index": 0}
    await stream.send("response.output_item.added", output_index=0, item=item)
    part = {"type": "output_text", "text": "", "annotations": []}
    await stream.send("response.content_part.added", **base, part=part)
    for i in range(0, len(text), TEXT_CHUNK):
        await stream.send(
            "response.output_text.delta", **base, delta=text[i : i + TEXT_CHUNK], logprobs=[]
        )
    await stream.send("response.output_text.done", **base, text=text, logprobs=[])
    await stream.send("response.content_part.done", **base, part={**part, "text": text})
    content = [{"type": "output_text", "text": text, "annotations": []}]
    done = {**item, "status": "completed", "content": content}
    await stream.send("response.output_item.done", output_index=0, item=done)
    await stream.complete(len(text))


def arguments_json(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments)
