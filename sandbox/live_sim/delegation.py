"""``responses`` delegation: the Live model hands a caller's request to a Responses backend that
calls the session's tools, and speaks the result.

A mixin of :class:`sandbox.live_sim.session.Session`. When a caller turn ends in a session whose
``delegation.type`` is ``responses``, the turn is delegated if the script (or the caller's words,
see :mod:`sandbox.live_sim.script`) picks a function the backend offers
(``delegation.responses.tools``; ``tool_choice: "none"`` calls none, a function ``tool_choice``
or ``"required"`` calls one even unasked). Then, in order:

1. ``session.delegation.created`` ``{offset_ms, delegation: {id, type: "delegation",
   target: "responses", response_id}}``;
2. the backend's stream as ``response.event`` ``{delegation_id, event}`` (see
   :mod:`sandbox.live_sim.backend`): one ``function_call`` item per call, ``call_id`` ``call_…``;
3. after ``acknowledgement_delay_ms`` (default 0) the model says "One moment." unless a
   ``session.thinking.append`` / ``session.commentary.append`` or the ``response.create``
   came first (they cancel pending acknowledgements, as documented).

The client answers **every** call of the batch with ``response.item.create``
``{item: {type: "function_call_output", call_id, output}}`` (no ack), then one
``response.create``. Refused with an ``error`` event (``invalid_request_error``):

- an output whose ``call_id`` is no pending call: ``invalid_value``, param ``item.call_id``;
- a second output for the same call: ``invalid_value``, param ``item.call_id``;
- ``response.create`` while a call has no output (a partial batch, or none yet):
  ``missing_tool_output`` naming the first call without one; the delegation keeps waiting;
- either event in a session without ``responses`` delegation: ``responses_delegation_required``.

Once complete, the backend streams a ``message`` response (``Okay: <the output's message>``,
from each output's ``message``/``summary``/``result``/``status`` field or its text) and the
Live model speaks it. A ``response.create`` with no pending calls starts a new delegation that
answers in words. A caller turn that delegates again before the outputs came leaves the earlier
delegation ``abandoned`` (each entry of the record's ``delegations`` has a ``status``:
``waiting``, ``answered`` or ``abandoned``). Every output received is kept in the session
record's ``tool_outputs`` (and ``GET /_sandbox/tool_outputs``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.live_sim import backend
from sandbox.live_sim.config import new_id
from sandbox.live_sim.script import Script, arguments_for, summary_of, tool_for
from sandbox.live_sim.speech import ACKNOWLEDGEMENT, REPLY


def output_text(output: Any) -> str:
    """A ``function_call_output``'s output as text (a string, or its content parts' text)."""
    if isinstance(output, str):
        return output
    return " ".join(str(p.get("text") or "") for p in output if isinstance(p, dict))


class Delegation:
    config: dict[str, Any]
    record: dict[str, Any]
    script: Script
    speed: float
    clock_ms: float
    waiting: dict[str, Any] | None  # the delegation whose calls need outputs
    acks: set[asyncio.Task]
    emit: Callable[[dict[str, Any]], Awaitable[None]]
    error: Callable[..., Awaitable[None]]
    speak: Callable[..., dict[str, Any]]

    @property
    def delegation_type(self) -> str:
        return (self.config.get("delegation") or {"type": "client"})["type"]

    @property
    def backend(self) -> dict[str, Any]:
        return (self.config.get("delegation") or {}).get("responses") or {}

    def pick_calls(self, heard: str | None) -> list[dict[str, Any]]:
        """The calls the backend makes for this caller turn (consumes the script)."""
        tools = self.backend.get("tools") or []
        offered = {t["name"]: t for t in tools if t.get("type") == "function"}
        choice = self.backend.get("tool_choice") or "auto"
        wanted: list[tuple[str, dict[str, Any] | None]] = []
        if self.script.tool_calls:
            wanted = list(self.script.tool_calls.popleft())
        elif heard and (name := tool_for(heard, list(offered))):
            wanted = [(name, None)]
        elif isinstance(choice, dict) and choice.get("name") in offered:
            wanted = [(choice["name"], None)]
        elif choice == "required" and offered:
            wanted = [(next(iter(offered)), None)]
        refused = self.record["tool_calls_refused"]
        calls: list[dict[str, Any]] = []
        for name, args in wanted:
            if choice == "none" or name not in offered:
                why = "tool_choice none" if choice == "none" else "not offered by the session"
                refused.append({"name": name, "why": why})
            elif calls and self.backend.get("parallel_tool_calls") is False:
                refused.append({"name": name, "why": "parallel_tool_calls is false"})
            else:
                arguments = args if args is not None else arguments_for(offered[name], heard or "")
                calls.append(
                    {"call_id": new_id("call"), "name": name, "arguments": json.dumps(arguments)}
                )
        return calls

    async def delegate(self, calls: list[dict[str, Any]]) -> dict[str, Any]:
        """A new delegation; its backend response makes ``calls`` (none: it answers in words)."""
        delegation_id, response_id = new_id("dlg"), new_id("resp")
        entry: dict[str, Any] = {
            "id": delegation_id,
            "response_ids": [response_id],
            "calls": calls,
            "outputs": {},
            "status": "waiting" if calls else "answered",
        }
        self.record["delegations"].append(entry)
        self.record["tool_calls"] += [{"delegation_id": delegation_id, **c} for c in calls]
        await self.emit(
            {
                "type": "session.delegation.created",
                "offset_ms": int(self.clock_ms),
                "delegation": {
                    "id": delegation_id,
                    "type": "delegation",
                    "target": "responses",
                    "response_id": response_id,
                },
            }
        )
        if calls:
            if self.waiting is not None:  # the caller moved on before the outputs came
                self.waiting["status"] = "abandoned"
            self.waiting = entry
            self._schedule_ack()
            await backend.function_calls(self._relay_to(delegation_id), response_id,
                                         self.backend, calls)  # fmt: skip
        return entry

    def _relay_to(self, delegation_id: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def emit_event(event: dict[str, Any]) -> None:
            await self.emit({"type": "response.event", "delegation_id": delegation_id,
                             "event": event})  # fmt: skip

        return emit_event

    def _schedule_ack(self) -> None:
        delay_ms = (self.config.get("delegation") or {}).get("acknowledgement_delay_ms") or 0

        async def acknowledge() -> None:
            await asyncio.sleep(delay_ms / 1000 / self.speed)
            self.acks.discard(task)
            self.speak(ACKNOWLEDGEMENT, "acknowledgement")

        task = asyncio.get_running_loop().create_task(acknowledge())
        self.acks.add(task)

    def cancel_acks(self) -> None:
        for task in self.acks:
            task.cancel()
        self.acks.clear()

    async def _need_responses(self, kind: str, eid: Any) -> bool:
        if self.delegation_type == "responses":
            return True
        await self.error(
            "responses_delegation_required",
            f"'{kind}' requires Responses delegation; this session's delegation is "
            f"'{self.delegation_type}'.",
            "type",
            eid,
        )
        return False

    async def on_response_item_create(self, event: dict[str, Any], eid: Any) -> None:
        if not await self._need_responses(event["type"], eid):
            return
        item = event["item"]
        if item.get("type") != "function_call_output":
            self.record["backend_items"].append(item)  # context for the backend's next answer
            return
        call_id, waiting = item["call_id"], self.waiting
        call = next((c for c in (waiting or {}).get("calls", []) if c["call_id"] == call_id), None)
        if waiting is None or call is None:
            await self.error(
                "invalid_value",
                f"No pending function call found for function_call_output with call_id "
                f"'{call_id}'.",
                "item.call_id",
                eid,
            )
            return
        if call_id in waiting["outputs"]:
            message = f"The function call '{call_id}' already has an output."
            await self.error("invalid_value", message, "item.call_id", eid)
            return
        waiting["outputs"][call_id] = item["output"]
        self.record["tool_outputs"].append(
            {
                "delegation_id": waiting["id"],
                "call_id": call_id,
                "name": call["name"],
                "arguments": call["arguments"],
                "output": item["output"],
            }
        )

    async def on_response_create(self, event: dict[str, Any], eid: Any) -> None:
        if not await self._need_responses(event["type"], eid):
            return
        waiting = self.waiting
        if waiting is None:
            said = [
                i.get("content")
                for i in self.record["backend_items"]
                if isinstance(i.get("content"), str)
            ]
            entry = await self.delegate([])
            await self._answer(entry, str(said[-1]) if said else REPLY)
            return
        missing = [c["call_id"] for c in waiting["calls"] if c["call_id"] not in waiting["outputs"]]
        if missing:
            await self.error(
                "missing_tool_output",
                f"No tool output found for function call {missing[0]}: send a "
                f"function_call_output for every pending call ({len(missing)} missing) before "
                "response.create.",
                None,
                eid,
            )
            return
        self.waiting = None
        self.cancel_acks()
        outputs = [output_text(waiting["outputs"][c["call_id"]]) for c in waiting["calls"]]
        await self._answer(waiting, " ".join(summary_of(o) for o in outputs))

    async def _answer(self, entry: dict[str, Any], text: str) -> None:
        response_id = new_id("resp")
        entry["response_ids"].append(response_id)
        entry["status"] = "answered"
        entry["answer"] = text
        await backend.message(self._relay_to(entry["id"]), response_id, self.backend, text)
        self.speak(text, "delegation")
