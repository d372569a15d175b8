"""Function calling (GA): the simulated model calls a tool the session offers.

The "caller" is scripted through the control API, shared by every session like the faults:

- ``/_sandbox/caller_says?text=transfer me to a person``: the next committed user audio gets
  this transcript, and the response to it calls the offered tool the words ask for
  (:data:`PHRASES`: a person → ``transfer_to_staff``, hang up/goodbye → ``end_call``, text
  me/link → ``send_text``), with arguments filled from the tool's JSON schema.
- ``/_sandbox/call_tool?name=end_call&arguments={"reason":"done"}``: the next response calls
  that tool with those arguments.

A tool the session (or the ``response.create``) does not offer is never called: the scripted
call is dropped and noted in the session record (``tool_calls_refused``), as a model only
calls tools it was given; ``tool_choice: "none"`` calls none. A tool call streams the
documented events: ``response.output_item.added`` (a ``function_call`` item, ``in_progress``),
``response.function_call_arguments.delta``…, ``.done``, ``response.output_item.done`` and
``response.done`` with the item in ``output``. The client answers with a
``function_call_output`` item (its ``call_id`` must be one the model made, else an ``error``
event) and a new ``response.create``; the reply then reflects the output.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

ARG_CHUNK = 16  # characters per arguments delta
PHRASES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("a person", "a human", "someone", "staff", "transfer", "representative"),
        "transfer_to_staff",
    ),
    (("hang up", "goodbye", "good bye", "bye"), "end_call"),
    (("text me", "send me", "the link", "a link"), "send_text"),
)


def new_call_id() -> str:
    import secrets

    return "call_" + secrets.token_hex(8)


@dataclass
class Script:
    """What the "caller" will say and which tool calls the model will make."""

    caller_says: collections.deque[str] = field(default_factory=collections.deque)
    tool_calls: collections.deque[tuple[str, dict[str, Any]]] = field(
        default_factory=collections.deque
    )

    def reset(self) -> None:
        self.caller_says.clear()
        self.tool_calls.clear()

    def view(self) -> dict[str, Any]:
        return {
            "caller_says": list(self.caller_says),
            "tool_calls": [{"name": n, "arguments": a} for n, a in self.tool_calls],
        }


def tool_for(transcript: str, offered: list[str]) -> str | None:
    words = transcript.lower()
    for phrases, name in PHRASES:
        if name in offered and any(p in words for p in phrases):
            return name
    return None


def arguments_for(tool: dict[str, Any], transcript: str) -> dict[str, Any]:
    """Arguments a model would give: every required property, strings from what was said."""
    schema = tool.get("parameters") or {}
    props: dict[str, Any] = schema.get("properties") or {}
    out: dict[str, Any] = {}
    for name in schema.get("required") or list(props):
        spec = props.get(name) or {}
        kind = spec.get("type")
        if spec.get("enum"):
            out[name] = spec["enum"][0]
        elif kind in ("integer", "number"):
            out[name] = 0
        elif kind == "boolean":
            out[name] = True
        elif kind == "array":
            out[name] = []
        elif kind == "object":
            out[name] = {}
        else:
            out[name] = transcript or name
    return out


def summary_of(output: str) -> str:
    """What the model says after a tool result: the result's message, briefly."""
    try:
        value = json.loads(output)
    except ValueError:
        value = output
    if isinstance(value, dict):
        for name in ("message", "summary", "result", "status"):
            if isinstance(value.get(name), str) and value[name]:
                value = value[name]
                break
        else:
            value = json.dumps(value)
    text = str(value).strip() or "done"
    return f"Okay: {text[:160]}"


class Tools:
    """Mixin of the session: decides, streams and checks tool calls."""

    config: dict[str, Any]
    items: list[dict[str, Any]]
    record: dict[str, Any]
    script: Script
    heard: str | None  # the transcript of the caller's last turn, until a response uses it
    emit: Callable[[dict[str, Any]], Awaitable[None]]
    error: Callable[..., Awaitable[None]]

    def pick_tool(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The tool this response calls, if any (consumes the script)."""
        if self.items and self.items[-1].get("type") == "function_call_output":
            return None  # the model answers a tool result in words
        tools = params.get("tools", self.config.get("tools")) or []
        offered = {t.get("name"): t for t in tools if t.get("type") == "function"}
        choice = params.get("tool_choice", self.config.get("tool_choice", "auto"))
        heard, self.heard = self.heard, None
        wanted: tuple[str, dict[str, Any] | None] | None = None
        if self.script.tool_calls:
            wanted = self.script.tool_calls.popleft()
        elif heard and (name := tool_for(heard, list(offered))):
            wanted = (name, None)
        elif isinstance(choice, dict) and choice.get("name") in offered:
            wanted = (choice["name"], None)
        elif choice == "required" and offered:
            wanted = (next(iter(offered)), None)
        if wanted is None:
            return None
        name, args = wanted
        if name not in offered or choice == "none":
            why = "tool_choice none" if choice == "none" else "not offered by the session"
            self.record.setdefault("tool_calls_refused", []).append({"name": name, "why": why})
            return None
        return name, args if args is not None else arguments_for(offered[name], heard or "")

    async def call_tool(
        self, response: dict[str, Any], record: dict[str, Any], name: str, args: dict[str, Any]
    ) -> None:
        response_id, item_id, call_id = response["id"], record["item_id"], new_call_id()
        arguments = json.dumps(args)
        record.update(tool_call={"name": name, "call_id": call_id, "arguments": arguments})
        self.record.setdefault("tool_calls", []).append(
            {"response_id": response_id, "call_id": call_id, "name": name, "arguments": arguments}
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        base = {"response_id": response_id, "output_index": 0}
        await self.emit({"type": "response.output_item.added", **base, "item": item})
        await self.emit({"type": "conversation.item.added", "item": item})
        for i in range(0, len(arguments), ARG_CHUNK):
            await self.emit(
                {
                    "type": "response.function_call_arguments.delta",
                    **base,
                    "item_id": item_id,
                    "call_id": call_id,
                    "delta": arguments[i : i + ARG_CHUNK],
                }
            )
        await self.emit(
            {
                "type": "response.function_call_arguments.done",
                **base,
                "item_id": item_id,
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            }
        )
        done_item = {**item, "status": "completed", "arguments": arguments}
        await self.emit({"type": "response.output_item.done", **base, "item": done_item})
        await self.emit({"type": "conversation.item.done", "item": done_item})
        self.items.append(done_item)
        record["status"] = "completed"
        await self.emit(
            {
                "type": "response.done",
                "response": {
                    **response,
                    "status": "completed",
                    "status_details": None,
                    "output": [done_item],
                    "usage": {
                        "total_tokens": len(arguments),
                        "input_tokens": 0,
                        "output_tokens": len(arguments),
                    },
                },
            }
        )

    async def check_tool_output(self, item: dict[str, Any], eid: Any) -> bool:
        """A ``function_call_output`` must answer a call the model made; False if refused."""
        call_id = item.get("call_id")
        call = next((c for c in self.record.get("tool_calls", []) if c["call_id"] == call_id), None)
        if call is None:
            await self.error(
                "invalid_value",
                f"No tool call found for function call output with call_id {call_id}.",
                "item.call_id",
                eid,
            )
            return False
        self.record.setdefault("tool_outputs", []).append(
            {"call_id": call_id, "name": call["name"], "output": item.get("output")}
        )
        return True

    def tool_reply(self) -> str | None:
        """After a tool result the spoken reply reflects it."""
        if self.items and self.items[-1].get("type") == "function_call_output":
            return summary_of(str(self.items[-1].get("output") or ""))
        return None
