"""One simulated GPT-Live session on a primary WebSocket: client events in, server events out.

Order of checks for every text frame: valid JSON with a ``type`` (else ``invalid_json`` /
``invalid_event``); before ``session.start`` nothing else is accepted (``session_not_started``)
and ``session.start`` is accepted once (``session_already_started``); ``session.update`` fields
that are startup-only are ``immutable_field_update`` (:mod:`sandbox.live_sim.config`); then the
shape (:mod:`sandbox.live_sim.schema`) and the service's rules. A refused event changes nothing
and is answered by one ``error`` event whose ``error.client_event_id`` is the event's
``event_id`` (if it had one). Binary frames are refused the same way.

Accepted events and their answers (``client_event_id`` echoes the client's ``event_id``):

- ``session.start`` → ``session.started`` ``{session: {id, expires_at, model, status, audio,
  delegation, input, instructions, store, ...}}``; from then on ``session.usage.updated``
  ``{usage: {seconds}, context_window: {usage_ratio}}`` every ``usage_interval_s`` and, at
  ``expires_at``, ``session.closed`` with reason ``expired``;
- ``session.update`` → ``session.updated`` (delegation settings and triggers only);
- ``session.input_audio.append`` → nothing (audio feeds the caller-speech detector unless muted
  or a fixture plays); ``session.input_audio.mute`` / ``.unmute`` → ``…muted`` / ``…unmuted``;
- ``session.instructions.append`` / ``.thinking.append`` / ``.commentary.append`` →
  ``…appended`` ``{start_ms, end_ms}``; instructions that ask to speak (a double-quoted sentence
  is said verbatim; "greet" gives a greeting, "goodbye" a goodbye, "say"/"tell"/"ask" an
  answer: :func:`sandbox.live_sim.speech.spoken_for`) and every commentary are spoken at once,
  replacing speech in progress; thinking is silent. ``delegation_id`` is required (null for
  session context; a non-null id is refused with ``responses`` delegation and unknown ids
  otherwise, as the simulator never delegates to the client). Instructions and commentary are
  refused while a fixture plays;
- ``session.output_audio.fixture.play`` (PCM16 24 kHz, at most 30 s) → ``…fixture.playing``, the
  clip as ``session.output_audio.delta`` in the session's format (no transcript), input dropped
  while it plays, then ``…fixture.played``;
- ``response.item.create`` / ``response.create``: :mod:`sandbox.live_sim.delegation`;
- ``decision.*``: refused with ``not_supported_by_simulator`` (Decisions are not simulated);
- ``session.close`` → ``session.closed`` ``{reason: "close_requested", session, usage}``, then
  the server closes the WebSocket (code 1000).

Caller speech and the turn that follows: :mod:`sandbox.live_sim.listening`; the model's
speech: :mod:`sandbox.live_sim.speech`; tool calls: :mod:`sandbox.live_sim.delegation`.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from sandbox.live_sim import config as cfg
from sandbox.live_sim import schema
from sandbox.live_sim.audio import FIXTURE_MAX_S, PCM24K, LiveFormat, format_of
from sandbox.live_sim.delegation import Delegation
from sandbox.live_sim.listening import Listening
from sandbox.live_sim.script import Script
from sandbox.live_sim.speech import Speech, spoken_for
from sandbox.realtime_sim.audio import Vad

CONTEXT_TOKENS = 128_000


class Settings:
    """Simulator-wide settings (``/_sandbox/settings``, ``/_sandbox/models``), read by each
    session when it starts."""

    def __init__(self, speed: float = 1.0, echo: bool = False):
        self.speed, self.echo = speed, echo
        self.reset()

    def reset(self) -> None:
        self.usage_interval_s = 5.0
        self.lifetime_s = 3600.0
        self.shutdowns: dict[str, datetime.date] = {}


class Session(Speech, Listening, Delegation):
    def __init__(
        self,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        close_socket: Callable[[], None],
        settings: Settings,
        script: Script,
    ):
        self.send, self.close_socket = send, close_socket
        self.settings, self.script, self.speed = settings, script, settings.speed
        self.echo = settings.echo
        self.config: dict[str, Any] = {}
        self.started_at: float | None = None
        self.closed = False
        self.muted = False
        self.fixture_playing = False
        self.fixture_eid: str | None = None
        self.vad = Vad()
        self.clock_ms = self.output_end_ms = 0.0
        self.speaking = self.deferred = None
        self.waiting = None
        self.lifetime_s = settings.lifetime_s
        self.acks: set[asyncio.Task] = set()
        self.timers: list[asyncio.Task] = []
        self.heard: dict[str, Any] | None = None  # the caller turn being transcribed
        self.record: dict[str, Any] = {
            "id": None,
            "open": True,
            "opened_at": time.time(),
            "closed_at": None,
            "closed_code": None,
            "closed_reason": None,
            "session": None,
            "events_received": {},
            "events": [],  # every client event but audio appends, as received
            "errors": [],
            "audio_in_ms": 0.0,
            "muted": False,
            "speech": [],
            "caller_turns": [],
            "turns": [],
            "appended": [],
            "delegations": [],
            "tool_calls": [],
            "tool_outputs": [],
            "tool_calls_refused": [],
            "backend_items": [],
            "usage_events": 0,
            "injected": [],  # frames sent by /_sandbox/inject
        }

    # -- output --------------------------------------------------------------------------------
    async def emit(self, event: dict[str, Any], eid: Any = None) -> None:
        if event["type"] != "session.output_audio.delta":  # the SDK gives it no event_id
            event = {"event_id": cfg.new_id("event"), **event}
        if eid is not None:
            event["client_event_id"] = eid
        await self.send(event)

    async def error(self, code: str, message: str, param: str | None, eid: Any = None,
                    kind: str = "invalid_request_error") -> None:  # fmt: skip
        self.record["errors"].append({"code": code, "param": param, "message": message})
        body = {"type": kind, "code": code, "message": message, "param": param}
        if eid is not None:
            body["client_event_id"] = eid
        await self.emit({"type": "error", "error": body}, eid)

    @property
    def output_format(self) -> LiveFormat:
        return format_of((self.config.get("audio") or {}).get("format"))

    def usage(self) -> dict[str, Any]:
        return {"seconds": float(int(time.time() - (self.started_at or time.time())))}

    # -- input ---------------------------------------------------------------------------------
    async def on_text(self, raw: str | bytes) -> None:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await self.error("invalid_json", "The event is not valid JSON.", None)
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.error("invalid_event", "An event must be an object with a type.", None)
            return
        kind, eid = event["type"], event.get("event_id")
        eid = eid if isinstance(eid, str) else None
        counts = self.record["events_received"]
        counts[kind] = counts.get(kind, 0) + 1
        if kind != "session.input_audio.append":
            self.record["events"].append(event)
        if self.closed:
            return
        if self.started_at is None and kind != "session.start":
            message = "Send session.start and wait for session.started before other events."
            await self.error("session_not_started", message, "type", eid)
            return
        if self.started_at is not None and kind == "session.start":
            message = "The session has already started; session.start is accepted once."
            await self.error("session_already_started", message, "type", eid)
            return
        refusal = (
            cfg.update_keys_refusal(event.get("session")) if kind == "session.update" else None
        )
        refusal = refusal or schema.check(raw, event)
        if refusal is not None:
            await self.error(refusal.code, refusal.message, refusal.param, eid)
            return
        if kind.startswith("decision."):
            message = "Decisions delegation is not simulated by the sandbox."
            await self.error("not_supported_by_simulator", message, "type", eid)
            return
        await getattr(self, "on_" + kind.replace(".", "_"))(event, eid)

    async def on_session_start(self, event: dict[str, Any], eid: Any) -> None:
        refusal = cfg.start_refusal(event["session"], self.settings.shutdowns)
        if refusal is not None:
            await self.error(refusal.code, refusal.message, refusal.param, eid)
            return
        self.config = cfg.resolve(event["session"], self.settings.lifetime_s)
        self.started_at = time.time()
        self.lifetime_s = self.settings.lifetime_s
        self.record.update(id=self.config["id"], session=self.config)
        await self.emit({"type": "session.started", "session": self.config}, eid)
        loop = asyncio.get_running_loop()
        self.timers += [loop.create_task(self._usage_loop()), loop.create_task(self._expiry())]

    async def on_session_update(self, event: dict[str, Any], eid: Any) -> None:
        refusal = cfg.update_refusal(self.config, event["session"])
        if refusal is not None:
            await self.error(refusal.code, refusal.message, refusal.param, eid)
            return
        cfg.apply_update(self.config, event["session"])
        await self.emit({"type": "session.updated", "session": self.config}, eid)

    async def on_session_input_audio_mute(self, event: dict[str, Any], eid: Any) -> None:
        self.muted = self.record["muted"] = True
        await self.emit({"type": "session.input_audio.muted"}, eid)

    async def on_session_input_audio_unmute(self, event: dict[str, Any], eid: Any) -> None:
        self.muted = self.record["muted"] = False
        await self.emit({"type": "session.input_audio.unmuted"}, eid)

    async def _appended(self, event: dict[str, Any], eid: Any, what: str) -> bool:
        """Check and acknowledge an instructions/thinking/commentary append."""
        delegation_id = event["delegation_id"]
        if delegation_id is not None:
            if self.delegation_type == "responses":
                message = "A non-null delegation_id is not accepted with Responses delegation."
            else:
                message = f"Delegation not found: '{delegation_id}'."
            await self.error("invalid_value", message, "delegation_id", eid)
            return False
        if self.fixture_playing and what != "thinking":
            message = f"session.{what}.append is rejected while an audio fixture is active."
            await self.error("fixture_active", message, None, eid)
            return False
        entry = {"kind": what, "content": event["content"], "delegation_id": delegation_id}
        self.record["appended"].append(entry)
        at = int(self.clock_ms)
        await self.emit({"type": f"session.{what}.appended", "start_ms": at, "end_ms": at}, eid)
        return True

    async def on_session_instructions_append(self, event: dict[str, Any], eid: Any) -> None:
        if await self._appended(event, eid, "instructions"):
            text = spoken_for(event["content"])
            if text is not None:
                self.speak(text, "instructions")

    async def on_session_thinking_append(self, event: dict[str, Any], eid: Any) -> None:
        if await self._appended(event, eid, "thinking"):
            self.cancel_acks()

    async def on_session_commentary_append(self, event: dict[str, Any], eid: Any) -> None:
        if await self._appended(event, eid, "commentary"):
            self.cancel_acks()
            self.speak(spoken_for(event["content"]) or event["content"], "commentary")

    async def on_session_output_audio_fixture_play(self, event: dict[str, Any], eid: Any) -> None:
        data = schema.decode_audio(event["audio"]) or b""
        seconds = len(data) / PCM24K.bytes_per_ms / 1000
        problem = None
        if not data or len(data) % 2:
            problem = "'audio' must be raw PCM16 (an even, non-zero number of bytes)."
        elif seconds > FIXTURE_MAX_S:
            problem = f"The fixture is {seconds:.1f} s; at most {FIXTURE_MAX_S} s is accepted."
        elif self.fixture_playing:
            problem = "An audio fixture is already playing; only one can be active."
        if problem is not None:
            await self.error("invalid_value", problem, "audio", eid)
            return
        self.fixture_playing = True
        self.fixture_eid = eid
        self.heard = None  # input is muted while it plays
        await self.emit({"type": "session.output_audio.fixture.playing"}, eid)
        self.speak("", "fixture", audio=self.output_format.from_fixture(data))

    async def after_turn(self, turn: dict[str, Any]) -> None:
        if turn["reason"] == "fixture" and self.fixture_playing:
            self.fixture_playing = False
            await self.emit({"type": "session.output_audio.fixture.played"}, self.fixture_eid)
            if self.deferred is not None:
                text, reason = self.deferred
                self.deferred = None
                self.speak(text, reason)

    async def on_session_close(self, event: dict[str, Any], eid: Any) -> None:
        await self.end("close_requested", eid)

    # -- server-side ends and timers ---------------------------------------------------------
    async def end(self, reason: str, eid: Any = None) -> None:
        """``session.closed`` with ``reason``, then close the WebSocket."""
        if self.closed or self.started_at is None:
            return
        self.closed = True
        self.halt()
        self.record["closed_reason"] = reason
        await self.emit(
            {"type": "session.closed", "reason": reason, "session": self.config,
             "usage": self.usage()}, eid,
        )  # fmt: skip
        self.close_socket()

    async def usage_now(self) -> None:
        tokens = len(self.config.get("instructions") or "") // 4 + int(self.clock_ms / 100)
        self.record["usage_events"] += 1
        ratio = round(min(1.0, tokens / CONTEXT_TOKENS), 4)
        await self.emit({"type": "session.usage.updated", "usage": self.usage(),
                         "context_window": {"usage_ratio": ratio}})  # fmt: skip

    async def _usage_loop(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.settings.usage_interval_s)
            await self.usage_now()

    async def _expiry(self) -> None:
        await asyncio.sleep(self.lifetime_s)
        await self.end("expired")

    def halt(self) -> None:
        """Stop speaking, acknowledgements and timers (the session is over)."""
        self.stop_speaking("closed")
        self.cancel_acks()
        current = asyncio.current_task()
        for task in self.timers:
            if task is not current:
                task.cancel()

    def finish(self, code: int | None) -> None:
        """The WebSocket is gone (closed by either side, or dropped)."""
        self.closed = True
        self.halt()
        self.record.update(open=False, closed_at=time.time(), closed_code=code)
