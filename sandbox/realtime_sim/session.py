"""One simulated Realtime session: client events in, server events out (GA shapes).

The session sends through an async ``send`` callable and streams responses from asyncio tasks
at a real-time pace (divided by ``speed``), like the real service, which streams audio faster
than it plays. Every client event is first checked against the SDK's GA client-event types
(:mod:`sandbox.realtime_sim.schema`: unknown fields at any depth, values, types); a refused
event changes nothing. Then the state the real API checks: a response while one is active,
a cancel with nothing active, a truncate past the audio sent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from sandbox.realtime_sim import schema
from sandbox.realtime_sim.audio import Format, Vad, format_of
from sandbox.realtime_sim.responses import Faults, Responses, new_id
from sandbox.realtime_sim.tools import Script, Tools

#: bench/relay_load.py frames start with this, then the sender's and our monotonic ns.
STAMP_MAGIC = b"GFTS"
BARGE_IN_MAGIC = b"GFBI"


def default_session(model: str) -> dict[str, Any]:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                "speed": 1,
            },
        },
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
    }


class Session(Responses, Tools):
    def __init__(
        self,
        model: str,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        speed: float = 1.0,
        echo: bool = False,
        faults: Faults | None = None,
        script: Script | None = None,
    ):
        self.send = send
        self.faults = faults or Faults()
        self.script = script or Script()
        self.heard: str | None = None
        self.speed = speed
        self.echo = echo
        self.echo_turn = 0  # a new echo "response" after every benchmark barge-in
        self.config = default_session(model)
        self.vad = Vad()
        self.buffer_ms = 0.0
        self.items: list[dict[str, Any]] = []  # conversation items (user and assistant)
        self.audio_sent_ms: dict[str, float] = {}  # assistant item -> audio ms streamed
        self.running: dict[str, asyncio.Task] = {}  # streaming responses, out-of-band too
        self.active_id: str | None = None  # the default conversation's response
        self.conversation_id = new_id("conv")
        self.speech_item: str | None = None
        # introspection for /_sandbox/sessions
        self.record: dict[str, Any] = {
            "id": self.config["id"],
            "model": model,
            "open": True,
            "opened_at": time.time(),
            "closed_at": None,
            "closed_code": None,
            "events_received": {},
            "audio_in_ms": 0.0,
            "audio_in_bytes": 0,
            "responses": [],
            "truncations": [],
            "cancels": 0,
            "errors": [],
            "speech": [],
        }
        self.record["session"] = self.config

    # -- helpers -----------------------------------------------------------------------------
    async def emit(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", new_id("event"))
        await self.send(event)

    async def error(self, code: str, message: str, param: str | None, event_id: Any) -> None:
        """The GA ``error`` event; ``event_id`` is the refused client event's, if it had one."""
        self.record["errors"].append(code)
        await self.emit(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": event_id,
                },
            }
        )

    @property
    def input_format(self) -> Format:
        return format_of(self.config["audio"]["input"]["format"])

    @property
    def output_format(self) -> Format:
        return format_of(self.config["audio"]["output"]["format"])

    # -- client events -----------------------------------------------------------------------
    async def on_text(self, raw: str | bytes) -> None:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await self.error("invalid_json", "The event is not valid JSON.", None, None)
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.error("invalid_event", "An event must be an object with a type.", None, None)
            return
        kind = event["type"]
        counts = self.record["events_received"]
        counts[kind] = counts.get(kind, 0) + 1
        eid = event.get("event_id")
        refusal = schema.check(raw, event)
        if refusal is not None:
            await self.error(refusal.code, refusal.message, refusal.param, eid)
            return
        handler = getattr(self, "on_" + kind.replace(".", "_"), None)
        if handler is None:  # output_audio_buffer.clear: in the schema, not on a WebSocket
            message = f"'{kind}' is only supported for WebRTC and SIP connections."
            await self.error("invalid_value", message, "type", eid)
            return
        await handler(event, eid)

    async def on_session_update(self, event: dict[str, Any], eid: Any) -> None:
        session = event["session"]  # checked by schema.check: merge it
        for name, value in session.items():
            if name == "audio":
                for side in ("input", "output"):
                    self.config["audio"][side].update((value or {}).get(side) or {})
            elif name != "model":  # fixed per session
                self.config[name] = value
        td = self.config["audio"]["input"].get("turn_detection") or {}
        self.vad.silence_ms = int(td.get("silence_duration_ms") or 500)
        await self.emit({"type": "session.updated", "session": self.config})

    async def on_input_audio_buffer_append(self, event: dict[str, Any], eid: Any) -> None:
        try:
            data = base64.b64decode(event.get("audio") or "", validate=True)
        except (binascii.Error, ValueError):
            await self.error("invalid_value", "Invalid base64 in 'audio'.", "audio", eid)
            return
        if self.echo:
            audio = event["audio"]
            if data[:4] == BARGE_IN_MAGIC:
                # The benchmark asks for a barge-in: the caller "starts speaking" now.
                self.echo_turn += 1
                self.record.setdefault("barge_in_sent_ns", []).append(time.monotonic_ns())
                await self.emit(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": int(self.record["audio_in_ms"]),
                        "item_id": new_id("item"),
                    }
                )
                return
            if data[:4] == STAMP_MAGIC and len(data) >= 20:
                # The benchmark's timestamped frame: note when it reached "OpenAI".
                stamped = data[:12] + time.monotonic_ns().to_bytes(8, "big") + data[20:]
                audio = base64.b64encode(stamped).decode()
            await self.emit(
                {
                    "type": "response.output_audio.delta",
                    "response_id": f"resp_echo{self.echo_turn}",
                    "item_id": f"item_echo{self.echo_turn}",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": audio,
                }
            )
            return
        fmt = self.input_format
        ms = len(data) / fmt.bytes_per_ms
        self.record["audio_in_ms"] += ms
        self.record["audio_in_bytes"] += len(data)
        self.buffer_ms += ms
        td = self.config["audio"]["input"].get("turn_detection")
        if not td:
            return
        for what, at_ms in self.vad.feed(fmt, data):
            if what == "started":
                await self._speech_started(at_ms, td)
            else:
                await self._speech_stopped(at_ms, td)

    async def _speech_started(self, at_ms: int, td: dict[str, Any]) -> None:
        self.speech_item = new_id("item")
        self.record["speech"].append({"started_ms": at_ms, "stopped_ms": None})
        await self.emit(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": at_ms,
                "item_id": self.speech_item,
            }
        )
        if td.get("interrupt_response", True) and self.active_id is not None:
            await self.cancel("turn_detected")  # out-of-band responses play on

    async def _speech_stopped(self, at_ms: int, td: dict[str, Any]) -> None:
        item_id = self.speech_item or new_id("item")
        self.record["speech"][-1]["stopped_ms"] = at_ms
        await self.emit(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": at_ms, "item_id": item_id}
        )
        await self._commit(item_id)
        if td.get("create_response", True):
            await self.start_response({}, None)

    async def _commit(self, item_id: str) -> None:
        previous = self.items[-1]["id"] if self.items else None
        spoken_s = self.buffer_ms / 1000
        self.buffer_ms = 0.0
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items.append(item)
        await self.emit(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": item_id,
            }
        )
        await self.emit(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        await self.emit(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
        )
        # what the scripted caller said (/_sandbox/caller_says), else only how long
        said = self.script.caller_says.popleft() if self.script.caller_says else None
        self.heard = said
        if self.config["audio"]["input"].get("transcription"):
            await self.emit(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": said or f"(caller spoke {spoken_s:.1f} s)",
                    "usage": {"type": "duration", "seconds": round(spoken_s, 1)},
                }
            )

    async def on_input_audio_buffer_commit(self, event: dict[str, Any], eid: Any) -> None:
        if self.buffer_ms < 100:
            await self.error(
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least 100ms "
                f"of audio, but buffer only has {self.buffer_ms:.2f}ms of audio.",
                None,
                eid,
            )
            return
        await self._commit(new_id("item"))

    async def on_input_audio_buffer_clear(self, event: dict[str, Any], eid: Any) -> None:
        self.buffer_ms = 0.0
        await self.emit({"type": "input_audio_buffer.cleared"})

    async def on_conversation_item_create(self, event: dict[str, Any], eid: Any) -> None:
        item = event["item"]  # its shape is checked by schema.check
        if item.get("type") == "function_call_output" and not await self.check_tool_output(
            item, eid
        ):
            return
        item = {"id": item.get("id") or new_id("item"), "status": "completed", **item}
        previous = self.items[-1]["id"] if self.items else None
        self.items.append(item)
        await self.emit(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        await self.emit(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
        )

    async def on_conversation_item_delete(self, event: dict[str, Any], eid: Any) -> None:
        item = self._item(event["item_id"])
        if item is None:
            await self._no_item(event["item_id"], eid)
            return
        self.items.remove(item)
        self.audio_sent_ms.pop(item["id"], None)
        await self.emit({"type": "conversation.item.deleted", "item_id": item["id"]})

    async def on_conversation_item_retrieve(self, event: dict[str, Any], eid: Any) -> None:
        item = self._item(event["item_id"])
        if item is None:
            await self._no_item(event["item_id"], eid)
            return
        await self.emit({"type": "conversation.item.retrieved", "item": item})

    def _item(self, item_id: str) -> dict[str, Any] | None:
        return next((i for i in self.items if i.get("id") == item_id), None)

    async def _no_item(self, item_id: str, eid: Any) -> None:
        message = f"Item with item_id not found: {item_id}"
        await self.error("item_not_found", message, "item_id", eid)

    async def on_response_create(self, event: dict[str, Any], eid: Any) -> None:
        if self.echo:
            return  # echo mode (benchmarks) speaks only what it hears
        params = event.get("response") or {}
        if params.get("conversation") != "none" and self.active_id is not None:
            await self.error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.active_id}. "
                "Wait until the response is finished before creating a new one.",
                None,
                eid,
            )
            return
        await self.start_response(params, eid)

    async def on_response_cancel(self, event: dict[str, Any], eid: Any) -> None:
        # Without a response_id the default conversation's response is cancelled.
        if not await self.cancel("client_cancelled", event.get("response_id")):
            await self.error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                None,
                eid,
            )

    async def on_conversation_item_truncate(self, event: dict[str, Any], eid: Any) -> None:
        item_id = event.get("item_id")
        end_ms = event.get("audio_end_ms")
        if self.echo and str(item_id).startswith("item_echo"):
            self.audio_sent_ms[item_id] = float("inf")  # echo items have no fixed length
        if item_id not in self.audio_sent_ms:
            await self.error(
                "item_truncate_invalid_item_id",
                f"Item with item_id not found: {item_id}",
                "item_id",
                eid,
            )
            return
        sent = self.audio_sent_ms[item_id]  # audio_end_ms is an int >= 0 (schema.check)
        if end_ms > sent + 0.5:
            await self.error(
                "invalid_value",
                f"Audio content of {sent:.0f}ms is already shorter than {end_ms}ms",
                "audio_end_ms",
                eid,
            )
            return
        self.record["truncations"].append({"item_id": item_id, "audio_end_ms": end_ms})
        await self.emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": event.get("content_index", 0),
                "audio_end_ms": end_ms,
            }
        )

    def close(self, code: int | None) -> None:
        for task in self.running.values():
            task.cancel()
        self.running.clear()
        self.active_id = None
        self.record.update(open=False, closed_at=time.time(), closed_code=code)
