"""OpenAI GPT-Live (``/v1/live/sessions``): the client events the relay sends and the fields of
the server events it reads, in one place (shapes as ``openai.types.live`` types them).

A phone leg speaks μ-law 8 kHz both ways (``audio/pcmu``), so Twilio's audio passes through as
is. The voice model talks; a Responses model runs the business prompt and our tools
(``delegation`` of type ``responses``). There is no response lifecycle, truncate or cancel on
this protocol: the model decides when it speaks and when it yields. The session's
configuration is strict (an unknown field is an error) and its voice, format, instructions and
delegation type are immutable, so only ``session.start`` carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

DEFAULT_URL = "wss://api.openai.com/v1/live/sessions"
#: ``session.start.session.input``: at most this many history messages.
MAX_INPUT_MESSAGES = 128
#: ``session.closed.reason`` values.
CLOSE_REASONS = ("close_requested", "expired", "content", "remote_hangup", "connection_lost")

#: Server events a phone bridge has no use for (acks, usage, delegation lifecycle, info).
IGNORED_EVENTS = frozenset(
    {
        "session.updated",
        "session.usage.updated",
        "session.delegation.created",
        "session.instructions.appended",
        "session.thinking.appended",
        "session.commentary.appended",
        "session.input_audio.muted",
        "session.input_audio.unmuted",
        "session.output_audio.fixture.playing",
        "session.output_audio.fixture.played",
        "info",
    }
)

_APPEND_HEAD = '{"type":"session.input_audio.append","audio":"'


def encode(event: dict[str, Any]) -> str:
    return orjson.dumps(event).decode()


# -- client events --------------------------------------------------------------------------------
def input_audio_append(payload_b64: str) -> str:
    """Caller audio, already checked to be base64 (:mod:`relay.protocol.twilio_media`)."""
    return _APPEND_HEAD + payload_b64 + '"}'


def message(role: str, text: str) -> dict[str, Any]:
    """A text message for ``session.start``'s ``input`` (``developer``, ``user`` or
    ``assistant``: one text part each)."""
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def session_start(
    *,
    model: str,
    instructions: str,
    voice: str,
    delegation_model: str,
    delegation_instructions: str,
    tools: list[dict[str, Any]] | None,
    history: list[dict[str, Any]],
    safety_identifier: str | None = None,
) -> dict[str, Any]:
    """The first message: the voice model and its short prompt, μ-law 8 kHz both ways, the
    voice, the Responses delegation with the business prompt and our function tools, and
    the conversation so far (``history``: :func:`message` items, newest kept)."""
    responses: dict[str, Any] = {"model": delegation_model, "instructions": delegation_instructions}
    if tools:
        responses["tools"] = tools
        responses["tool_choice"] = "auto"
        responses["parallel_tool_calls"] = False
    session: dict[str, Any] = {
        "model": model,
        "instructions": instructions,
        "audio": {"format": {"type": "audio/pcmu", "rate": 8000}, "output": {"voice": voice}},
        "delegation": {"type": "responses", "responses": responses},
        "store": False,
    }
    if history:
        session["input"] = history[-MAX_INPUT_MESSAGES:]
    if safety_identifier:
        session["safety_identifier"] = safety_identifier
    return {"type": "session.start", "session": session}


def instructions_append(content: str) -> dict[str, Any]:
    """Instructions for the voice model now (the greeting, a fixed sentence); it may speak."""
    return {"type": "session.instructions.append", "content": content, "delegation_id": None}


def thinking_append(content: str) -> dict[str, Any]:
    """Silent context for the voice model (e.g. that the caller pressed a key)."""
    return {"type": "session.thinking.append", "content": content, "delegation_id": None}


def function_call_output(call_id: str, output: str) -> dict[str, Any]:
    return {
        "type": "response.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    }


def response_create() -> dict[str, Any]:
    """Continue the delegated Responses work once every pending call has its output."""
    return {"type": "response.create"}


def session_close() -> dict[str, Any]:
    return {"type": "session.close"}


# -- server events --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FunctionCall:
    name: str
    arguments: str
    call_id: str


def function_call_in(event: dict[str, Any]) -> FunctionCall | None:
    """The completed function call a ``response.event`` carries in a nested
    ``response.output_item.done`` (lifecycle snapshots have empty outputs: only the item
    events are read)."""
    inner = event.get("event")
    if not isinstance(inner, dict) or inner.get("type") != "response.output_item.done":
        return None
    item = inner.get("item")
    if not isinstance(item, dict) or item.get("type") != "function_call":
        return None
    if item.get("status") not in (None, "completed"):
        return None
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
    if not isinstance(call_id, str) or not call_id:
        return None  # nothing to answer to
    return FunctionCall(
        name if isinstance(name, str) else "",
        arguments if isinstance(arguments, str) else "",
        call_id,
    )


def transcript_delta(event: dict[str, Any]) -> tuple[str, float | None, float | None] | None:
    """``(delta, start_ms, end_ms)`` of a ``session.input_transcript.delta`` or
    ``session.output_transcript.delta`` (times None when absent)."""
    delta = event.get("delta")
    if not isinstance(delta, str):
        return None
    start, end = event.get("start_ms"), event.get("end_ms")
    return (
        delta,
        float(start) if isinstance(start, int | float) else None,
        float(end) if isinstance(end, int | float) else None,
    )


def closed_reason(event: dict[str, Any]) -> str:
    reason = event.get("reason")
    return reason if isinstance(reason, str) else ""


def error_of(event: dict[str, Any]) -> tuple[str, str, str]:
    """``(type, code, message)`` of an ``error`` event."""
    err = event.get("error")
    err = err if isinstance(err, dict) else {}
    return (
        str(err.get("type") or ""),
        str(err.get("code") or ""),
        str(err.get("message") or "")[:200],
    )
