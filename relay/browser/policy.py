"""What a browser may ask of the relay's OpenAI session (``BROWSER_SESSION_POLICY=owned``).

The relay holds the API key, so a browser that could set ``instructions`` or ``tools`` would
turn the website's assistant into a free, general-purpose OpenAI proxy. The relay therefore
owns the session: it sends its own ``session.update`` first (:func:`owned_session_update`),
and each browser event is policed here before it goes upstream:

* event types outside the GA client-event list are refused (an ``error`` event, not sent);
* ``session.update`` keeps only :data:`SESSION_ALLOWED` (audio formats, turn detection,
  transcription, noise reduction, voice, speed) and ``session.type`` stays ``"realtime"``;
* ``response.create`` loses :data:`RESPONSE_DENIED` (its own prompt, tools or context);
* ``conversation.item.create`` may not add a ``system`` message (a prompt by another name).

Every removed field gets its own GA-shaped ``error`` event naming it; the rest still passes.
Pure functions only: no sockets, no clock, no logging (the gevent shell logs).

JSON parsers disagree about duplicate keys (orjson keeps the last, others the first), so a
frame is forwarded byte for byte only when it cannot be read two ways: policed events are
always re-serialized from what was checked; other events pass as they came when their text
begins with ``{"type":"<the type orjson read>"`` (the first ``type`` and the last agree, so
every parser reads the same event type; what ``JSON.stringify`` produces), and are
re-serialized otherwise. The check is a ``startswith``: audio appends pay nothing for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson

from common.models import default_transcription
from relay.protocol import realtime

#: The GA client events (``openai.types.realtime.RealtimeClientEvent``). Kept literal so the
#: relay does not import the SDK (over a second at start); tests/relay/browser/test_policy.py
#: checks it against the pinned SDK's union.
CLIENT_EVENT_TYPES = frozenset(
    {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.delete",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "response.create",
        "response.cancel",
        "output_audio_buffer.clear",
    }
)
#: Events whose content is checked (and which are therefore always re-serialized).
POLICED = frozenset({"session.update", "response.create", "conversation.item.create"})
#: What a browser may set in ``session``, by path; everything else is stripped.
SESSION_ALLOWED: dict[str, frozenset[str]] = {
    "audio.input": frozenset({"format", "turn_detection", "transcription", "noise_reduction"}),
    "audio.output": frozenset({"format", "voice", "speed"}),
}
#: ``response.create`` fields that would replace the relay's prompt, tools or conversation.
RESPONSE_DENIED = frozenset(
    {"instructions", "tools", "tool_choice", "prompt", "conversation", "input"}
)
STRIPPED_CODE = "parameter_not_allowed"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A policed event: ``forward`` goes upstream (None: nothing does), ``errors`` to the
    browser; ``params`` names what was removed (for the log line)."""

    forward: bytes | None
    errors: tuple[bytes, ...]
    params: tuple[str, ...]


def error_event(code: str, message: str, param: str | None = None, event_id: Any = None) -> bytes:
    """An ``error`` event in the Realtime GA shape, so browser code handles it like OpenAI's.
    ``event_id`` inside ``error`` is the client event's (GA), the outer one is ours."""
    return orjson.dumps(
        {
            "type": "error",
            "event_id": "event_relay_" + os.urandom(8).hex(),
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": param,
                "event_id": event_id if isinstance(event_id, str) else None,
            },
        }
    )


def owned_session(
    instructions: str, voice: str, transcription: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The relay's session for the website: its prompt, voice and caller-side transcription
    (default: :func:`common.models.default_transcription`), no tools (GA shape)."""
    return {
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": instructions,
        "tools": [],
        "audio": {
            "input": {"transcription": transcription or default_transcription()},
            "output": {"voice": voice},
        },
    }


def owned_session_update(
    instructions: str, voice: str, transcription: dict[str, Any] | None = None
) -> bytes:
    session = owned_session(instructions, voice, transcription)
    return orjson.dumps(realtime.session_update(session, event_id="event_relay_session"))


#: ``{"type":"<type>"`` for each event type: a frame that begins so has that type first.
_PREFIXES = {kind: b'{"type":"' + kind.encode() + b'"' for kind in CLIENT_EVENT_TYPES}


def police(event: dict[str, Any], raw: bytes) -> bytes | Verdict:
    """The bytes to send upstream for one parsed browser ``event`` (``raw`` is its text),
    or a :class:`Verdict` when something was removed or the event is refused."""
    kind = event.get("type")
    if kind not in CLIENT_EVENT_TYPES:
        return _refuse_type(kind, event.get("event_id"))
    if kind not in POLICED:
        # orjson read the *last* "type"; the prefix makes it the first one too.
        return raw if raw.startswith(_PREFIXES[kind]) else orjson.dumps(event)
    if kind == "session.update":
        return _session_update(event)
    if kind == "response.create":
        return _response_create(event)
    return _item_create(event)


def _refuse_type(kind: Any, event_id: Any) -> Verdict:
    shown = kind if isinstance(kind, str) else orjson.dumps(kind).decode()
    supported = ", ".join(f"'{t}'" for t in sorted(CLIENT_EVENT_TYPES))
    message = f"Invalid value: '{shown[:100]}'. Supported values are: {supported}."
    return Verdict(None, (error_event("invalid_value", message, "type", event_id),), ("type",))


def _stripped(param: str, event_id: Any) -> bytes:
    message = (
        f"The relay does not let the browser set '{param}'; it was removed and the rest of "
        "the event was sent."
    )
    return error_event(STRIPPED_CODE, message, param, event_id)


def _extra_top_level(event: dict[str, Any], body: str) -> list[str]:
    return [k for k in event if k not in ("type", "event_id", body)]


def _verdict(out: dict[str, Any] | None, params: list[str], event_id: Any) -> bytes | Verdict:
    forward = None if out is None else orjson.dumps(out)
    if not params:
        assert forward is not None
        return forward
    errors = tuple(_stripped(p, event_id) for p in params)
    return Verdict(forward, errors, tuple(params))


def _session_update(event: dict[str, Any]) -> bytes | Verdict:
    eid = event.get("event_id")
    params = _extra_top_level(event, "session")
    session = event.get("session")
    if not isinstance(session, dict):
        message = "'session' must be an object."
        return Verdict(None, (error_event("invalid_type", message, "session", eid),), ("session",))
    kept: dict[str, Any] = {"type": "realtime"}
    for name, value in session.items():
        if name == "type":
            if value != "realtime":
                params.append("session.type")  # the relay keeps the GA realtime session
        elif name == "audio" and isinstance(value, dict):
            audio = _audio(value, params)
            if audio:
                kept["audio"] = audio
        else:
            params.append(f"session.{name}")
    out: dict[str, Any] = {"type": "session.update"}
    if "event_id" in event:
        out["event_id"] = eid
    out["session"] = kept
    return _verdict(out, params, eid)


def _audio(audio: dict[str, Any], params: list[str]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for side, value in audio.items():
        allowed = SESSION_ALLOWED.get(f"audio.{side}")
        if allowed is None or not isinstance(value, dict):
            params.append(f"session.audio.{side}")
            continue
        fields = {}
        for name, setting in value.items():
            if name in allowed:
                fields[name] = setting
            else:
                params.append(f"session.audio.{side}.{name}")
        kept[side] = fields
    return kept


def _response_create(event: dict[str, Any]) -> bytes | Verdict:
    eid = event.get("event_id")
    params = _extra_top_level(event, "response")
    out: dict[str, Any] = {"type": "response.create"}
    if "event_id" in event:
        out["event_id"] = eid
    response = event.get("response")
    if isinstance(response, dict):
        kept = {}
        for name, value in response.items():
            if name in RESPONSE_DENIED:
                params.append(f"response.{name}")
            else:
                kept[name] = value
        out["response"] = kept
    elif "response" in event:
        out["response"] = response  # not an object: OpenAI answers with its own error
    return _verdict(out, params, eid)


def _item_create(event: dict[str, Any]) -> bytes | Verdict:
    item = event.get("item")
    if isinstance(item, dict) and item.get("role") == "system":
        eid = event.get("event_id")
        message = "The relay does not let the browser add system messages; the event was not sent."
        error = error_event(STRIPPED_CODE, message, "item.role", eid)
        return Verdict(None, (error,), ("item.role",))
    return orjson.dumps(event)
