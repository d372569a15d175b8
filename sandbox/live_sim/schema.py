"""Client events checked against ``openai.types.live`` (the openai SDK pinned in requirements.txt).

As :mod:`sandbox.realtime_sim.schema` does for Realtime, the shapes come from the SDK's own
types (so the simulator follows the pin, not a hand-kept copy) and the checks are stricter than
the SDK's models, which keep unknown keys (``extra="allow"``):

- the event must be one of ``ClientEvent``'s members (discriminated by ``type``), validated with
  pydantic in strict mode (no "5" for 5);
- a key no SDK model declares, at any depth, is ``unknown_parameter`` with its dotted ``param``
  (``session.audio.output.speed``); only the SDK's opaque placeholders (models whose one field is
  ``type``, e.g. a ``custom`` tool) and free-form JSON (a tool's ``parameters``) take any key;
- the rules the types leave to the service are in :mod:`sandbox.live_sim.config` (models,
  voices, rates, immutable fields) and :func:`event_rules` below.

Refusals are ``error`` events of type ``invalid_request_error`` with the same codes and message
style as the Realtime service (``unknown_parameter``, ``missing_required_parameter``,
``invalid_type``, ``invalid_value``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Union, get_args

from openai.types.live import ClientEvent
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from sandbox.realtime_sim.schema import Refusal, _join, _listing, _locate, _refusal

__all__ = ["EVENT_TYPES", "Refusal", "check", "decode_audio", "listing", "unknown_parameter"]

_MEMBERS: tuple[type[BaseModel], ...] = get_args(get_args(ClientEvent)[0])
#: The SDK's ``PropertyInfo(discriminator=...)`` is not a pydantic discriminator.
_CLIENT_EVENT: TypeAdapter[Any] = TypeAdapter(
    Annotated[Union[_MEMBERS], Field(discriminator="type")]  # noqa: UP007 (a runtime tuple)
)
EVENT_TYPES = [get_args(m.model_fields["type"].annotation)[0] for m in _MEMBERS]
#: content of instructions/thinking/commentary: "limited to 500 tokens" (~4 characters each)
APPEND_MAX_CHARS = 2000


def listing(values: list[str]) -> str:
    return _listing(values)


def unknown_parameter(param: str) -> Refusal:
    return Refusal("unknown_parameter", f"Unknown parameter: '{param}'.", param)


def check(raw: str | bytes, event: dict[str, Any]) -> Refusal | None:
    """None if ``event`` (``raw`` is its JSON text) has the shape the SDK types."""
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        return Refusal(
            "invalid_value",
            f"Invalid value: '{kind}'. Supported values are: {_listing(EVENT_TYPES)}.",
            "type",
        )
    try:
        model = _CLIENT_EVENT.validate_json(raw, strict=True)
    except ValidationError as exc:
        refusal = _no_member(exc, event) or _refusal(exc, event)
        if refusal.code == "invalid_type" and "expected one of" in refusal.message:
            # a number outside an integer Literal (audio/pcm at 8000) is a value, not a type
            expected = refusal.message.split("expected one of ")[1].split(", but")[0]
            value = _value_at(event, refusal.param)
            if isinstance(value, int) and not isinstance(value, bool):
                message = f"Invalid value: {value}. Supported values are: {expected}."
                return Refusal("invalid_value", message, refusal.param)
        if refusal.message.endswith("Supported values are: ."):  # "8000" for an int Literal
            message = f"Invalid type for '{refusal.param}': expected an integer, but got a string."
            return Refusal("invalid_type", message, refusal.param)
        return refusal
    unknown = _first_extra(model, "")
    if unknown is not None:
        return unknown_parameter(unknown)
    return event_rules(event)


def _no_member(exc: ValidationError, event: dict[str, Any]) -> Refusal | None:
    """A ``type`` no member of a union has (``audio.format.type: "g711_ulaw"``): the SDK's
    unions are not pydantic-discriminated, so pydantic reports every member's complaints; the
    service names the type."""
    errors = exc.errors()
    for error in errors:
        loc = error["loc"]
        if error["type"] != "literal_error" or loc[-1] != "type" or len(loc) < 2:
            continue
        union = loc[:-2]
        inside = [
            e for e in errors if e["loc"][: len(union)] == union and len(e["loc"]) > len(union)
        ]
        members = {e["loc"][len(union)] for e in inside}
        wrong_type = {
            e["loc"][len(union)]
            for e in inside
            if e["type"] == "literal_error"
            and len(e["loc"]) == len(union) + 2
            and e["loc"][-1] == "type"
        }
        if len(members) > 1 and members == wrong_type:
            path, value, _ = _locate(error, event)
            if not isinstance(value, str):
                return None
            expected = [
                v.strip("'")
                for e in inside
                if e["loc"][-1] == "type" and e["type"] == "literal_error"
                for v in e["ctx"]["expected"].split(" or ")
            ]
            return Refusal(
                "invalid_value",
                f"Invalid value: '{value}'. Supported values are: {_listing(expected)}.",
                path,
            )
    return None


def _value_at(event: dict[str, Any], param: str | None) -> Any:
    value: Any = event
    for part in re.findall(r"[^.\[\]]+", param or ""):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _opaque(model: BaseModel) -> bool:
    """The SDK's placeholder for a shape it does not spell out (only a ``type`` field)."""
    return set(type(model).model_fields) == {"type"}


def _first_extra(value: Any, path: str) -> str | None:
    """The dotted path of the first key no SDK model declares, walking the validated tree."""
    if isinstance(value, BaseModel):
        if not _opaque(value):
            for key in value.model_extra or {}:
                return _join(path, key)
        for name, info in type(value).model_fields.items():
            if name in value.model_fields_set:
                found = _first_extra(getattr(value, name), _join(path, info.alias or name))
                if found is not None:
                    return found
    elif isinstance(value, (list, tuple)):
        for i, element in enumerate(value):
            found = _first_extra(element, _join(path, i))
            if found is not None:
                return found
    return None


def decode_audio(value: str) -> bytes | None:
    """Strict base64, or None."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def event_rules(event: dict[str, Any]) -> Refusal | None:
    """Per-event rules the SDK's types document in words but do not enforce."""
    kind = event["type"]
    if kind in ("session.instructions.append", "session.thinking.append",
                "session.commentary.append"):  # fmt: skip
        if "delegation_id" not in event:  # "Required, nullable"
            return Refusal(
                "missing_required_parameter",
                "Missing required parameter: 'delegation_id'.",
                "delegation_id",
            )
        if not event["content"].strip():
            return Refusal("invalid_value", "'content' must not be empty.", "content")
        if len(event["content"]) > APPEND_MAX_CHARS:
            return Refusal(
                "string_above_max_length",
                "Invalid 'content': string too long. Expected at most 500 tokens.",
                "content",
            )
    if kind in ("session.input_audio.append", "session.output_audio.fixture.play"):
        data = decode_audio(event["audio"])
        if data is None:
            return Refusal("invalid_value", "Invalid base64 in 'audio'.", "audio")
    if kind == "response.item.create":
        item = event["item"]
        if item.get("type") == "function_call_output" and not item.get("call_id"):
            return Refusal(
                "missing_required_parameter",
                "Missing required parameter: 'item.call_id'.",
                "item.call_id",
            )
    return None
