"""OpenAI Realtime (GA): the client events the relay sends and the server-event fields it reads,
in one place (shapes as ``openai.types.realtime`` types them).

Client events are built here and nowhere else: the phone session (``session.update`` with
μ-law both ways), caller audio (``input_audio_buffer.append``, a string splice on the hot
path: Twilio's base64 is checked before it gets here), responses, cancels, truncation, and
conversation items (replayed turns, notes for the model, function-call outputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

#: OpenAI errors that are expected races, not faults: a cancel that raced ``response.done``, a
#: response asked for while one is active, a commit of an empty buffer.
BENIGN_ERRORS = frozenset(
    {
        "response_cancel_not_active",
        "conversation_already_has_active_response",
        "input_audio_buffer_commit_empty",
    }
)

_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'


def encode(event: dict[str, Any]) -> str:
    return orjson.dumps(event).decode()


# -- client events --------------------------------------------------------------------------------
def input_audio_append(payload_b64: str) -> str:
    """Caller audio, already checked to be base64 (:mod:`relay.protocol.twilio_media`)."""
    return _APPEND_HEAD + payload_b64 + '"}'


def session_update(session: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "session.update"}
    if event_id is not None:
        event["event_id"] = event_id
    event["session"] = session
    return event


def phone_session(
    *,
    model: str,
    instructions: str,
    voice: str,
    transcription: dict[str, Any],
    turn_detection: dict[str, Any] | None,
    tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A GA session for a phone leg: μ-law 8 kHz both ways (Twilio's audio passes through as
    is), audio out only, the caller transcribed, and the function tools when there are any."""
    session: dict[str, Any] = {
        "type": "realtime",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": instructions,
        "audio": {
            "input": {
                "format": {"type": "audio/pcmu"},
                "transcription": transcription,
                "turn_detection": turn_detection,
            },
            "output": {"format": {"type": "audio/pcmu"}, "voice": voice},
        },
    }
    if tools:
        session["tools"] = tools
        session["tool_choice"] = "auto"
    return session


def response_create(
    instructions: str | None = None,
    *,
    conversation: str | None = None,
    tool_choice: str | None = None,
) -> dict[str, Any]:
    """``response.create``; with ``instructions`` they replace the session's for this one
    response, and ``conversation="none"`` keeps it out of the conversation."""
    response: dict[str, Any] = {}
    if conversation is not None:
        response["conversation"] = conversation
    if tool_choice is not None:
        response["tool_choice"] = tool_choice
    if instructions is not None:
        response["instructions"] = instructions
    if response:
        return {"type": "response.create", "response": response}
    return {"type": "response.create"}


def response_cancel() -> dict[str, Any]:
    return {"type": "response.cancel"}


def truncate(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    """Cut an assistant audio item to what the caller heard."""
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    }


def message(role: str, text: str) -> dict[str, Any]:
    """A conversation item: ``user`` and ``system`` text is ``input_text``, the assistant's
    ``output_text``."""
    kind = "output_text" if role == "assistant" else "input_text"
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": [{"type": kind, "text": text}]},
    }


def function_call_output(call_id: str, output: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    }


# -- server events --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResponseEnd:
    """The outcome in a ``response.done`` event.

    ``response.status`` is ``completed``, ``cancelled``, ``incomplete`` or ``failed``;
    ``status_details`` is ``{"type", "reason"}`` for a cancelled or incomplete response and
    ``{"type": "failed", "error": {"type", "code", "message"}}`` for a failed one
    (``RealtimeResponseStatus``)."""

    id: str
    status: str  # "" when the event has none: never taken for "completed"
    reason: str  # status_details.reason, or the error's code (else its type)
    message: str

    @classmethod
    def of(cls, response: dict[str, Any]) -> ResponseEnd:
        details = response.get("status_details")
        details = details if isinstance(details, dict) else {}
        error = details.get("error")
        error = error if isinstance(error, dict) else {}
        return cls(
            id=str(response.get("id") or ""),
            status=str(response.get("status") or ""),
            reason=str(details.get("reason") or error.get("code") or error.get("type") or ""),
            message=str(error.get("message") or "")[:200],
        )


def response_of(event: dict[str, Any]) -> dict[str, Any]:
    """The ``response`` object of ``response.created`` / ``response.done`` ({} if absent)."""
    response = event.get("response")
    return response if isinstance(response, dict) else {}


def transcript_of(response: dict[str, Any]) -> str:
    """The audio transcript in a ``response.done`` payload's output items."""
    parts = []
    for item in response.get("output") or []:
        for content in (item.get("content") or []) if isinstance(item, dict) else []:
            if isinstance(content, dict) and isinstance(content.get("transcript"), str):
                parts.append(content["transcript"])
    return " ".join(parts)


@dataclass(frozen=True)
class FunctionCall:
    name: str
    arguments: str
    call_id: str
    response_id: str = ""


def function_calls_in(event: dict[str, Any]) -> list[FunctionCall]:
    """The function calls a server event carries: one from
    ``response.function_call_arguments.done``, any number of ``function_call`` items from
    ``response.done`` (an ``incomplete`` item was cut off mid-call and is skipped)."""
    kind = event.get("type")
    if kind == "response.function_call_arguments.done":
        found = [_call_of(event, str(event.get("response_id") or ""))]
    elif kind == "response.done":
        response = response_of(event)
        rid = str(response.get("id") or "")
        found = [
            _call_of(item, rid)
            for item in response.get("output") or []
            if isinstance(item, dict)
            and item.get("type") == "function_call"
            and item.get("status") != "incomplete"
        ]
    else:
        return []
    return [c for c in found if c is not None]


def _call_of(obj: dict[str, Any], response_id: str) -> FunctionCall | None:
    name, call_id, arguments = obj.get("name"), obj.get("call_id"), obj.get("arguments")
    if not isinstance(call_id, str) or not call_id:
        return None  # nothing to answer to
    return FunctionCall(
        name=name if isinstance(name, str) else "",
        arguments=arguments if isinstance(arguments, str) else "",
        call_id=call_id,
        response_id=response_id,
    )
