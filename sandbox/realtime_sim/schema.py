"""Client events checked against the GA types of the openai SDK pinned in requirements.txt.

Deriving the check from ``openai.types.realtime`` keeps the simulator in step with the SDK
pin instead of with a hand-kept list. The SDK's models are lenient where the API is not:
they keep unknown keys (``extra="allow"``) and they do not encode some documented value
rules. So on top of pydantic's strict validation this module reports any unknown key, at any
depth (a validated model's ``model_extra``), and the rules the types leave out (one output
modality, token and speed ranges, built-in voice names, ``conversation`` auto|none,
``audio_end_ms`` >= 0), and the models the service serves: a session or transcription model
past its shutdown date (:mod:`sandbox.realtime_sim.models`) is refused as ``model_not_found``,
and transcription fields go only with the models the SDK's field notes allow them for
(``keywords``/``languages``, ``delay``, ``prompt``; never ``language`` with ``languages``).
Refusals carry the real server's codes, messages and dotted params.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from openai.types.realtime import RealtimeClientEvent, RealtimeSessionCreateRequest
from openai.types.realtime.realtime_audio_config_output import Voice
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from sandbox.realtime_sim import models

_MEMBERS: tuple[type[BaseModel], ...] = get_args(get_args(RealtimeClientEvent)[0])
#: The SDK's own ``PropertyInfo(discriminator=...)`` is not a pydantic discriminator.
_CLIENT_EVENT: TypeAdapter[Any] = TypeAdapter(
    Annotated[Union[_MEMBERS], Field(discriminator="type")]  # noqa: UP007 (a runtime tuple)
)
EVENT_TYPES = [get_args(m.model_fields["type"].annotation)[0] for m in _MEMBERS]
SESSION_KEYS = {f.alias or name for name, f in RealtimeSessionCreateRequest.model_fields.items()}
VOICES = [v for arg in get_args(Voice) if get_origin(arg) is Literal for v in get_args(arg)]

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a decimal",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


@dataclass(frozen=True)
class Refusal:
    """An ``error`` event's ``error`` body: ``invalid_request_error`` with these fields."""

    code: str
    message: str
    param: str | None


def check(raw: str | bytes, event: dict[str, Any], today: date | None = None) -> Refusal | None:
    """None if the real service would accept ``event`` (``raw`` is its JSON text) on ``today``
    (default: the simulated date, :data:`sandbox.realtime_sim.models.CLOCK`)."""
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        return Refusal(
            "invalid_value",
            f"Invalid value: '{kind}'. Supported values are: {_listing(EVENT_TYPES)}.",
            "type",
        )
    session = event.get("session")
    if kind == "session.update" and isinstance(session, dict):
        # Unknown top-level keys first: a beta-shaped update is told which field is wrong.
        for name in session:
            if name not in SESSION_KEYS:
                return _unknown_parameter(f"session.{name}")
    try:
        model = _CLIENT_EVENT.validate_json(raw, strict=True)
    except ValidationError as exc:
        return _refusal(exc, event)
    unknown = _first_extra(model, "")
    if unknown is not None:
        return _unknown_parameter(unknown)
    refusal = _value_rules(event)
    if refusal is None and kind == "session.update":
        return _model_rules(event["session"], today or models.CLOCK.today())
    return refusal


def _unknown_parameter(param: str) -> Refusal:
    return Refusal("unknown_parameter", f"Unknown parameter: '{param}'.", param)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _first_extra(value: Any, path: str) -> str | None:
    """The dotted path of the first key no SDK model declares, walking the validated tree."""
    if isinstance(value, BaseModel):
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


def _locate(error: Any, data: Any) -> tuple[str, Any, int | None]:
    """(dotted path in the input, the value there, index of the last union tag in ``loc``).

    pydantic puts union member names (``AudioPCM``, ``int``, ...) into ``loc``; they are the
    parts that do not name anything in the input."""
    path, cur, tag = "", data, None
    loc = error["loc"]
    for i, part in enumerate(loc):
        in_dict = isinstance(cur, dict) and isinstance(part, str) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if in_dict or in_list:
            path, cur = _join(path, part), cur[part]
        elif i == len(loc) - 1 and error["type"] == "missing":
            path, cur = _join(path, part), None
        else:
            tag = i
    return path, cur, tag


def _refusal(exc: ValidationError, event: dict[str, Any]) -> Refusal:
    errors = [(e, *_locate(e, event)) for e in exc.errors()]
    # The server picks a union member by its "type": errors of members whose type did not
    # match say nothing about the member that did.
    mismatched = [
        e["loc"][: len(e["loc"]) - 1]
        for e, path, _, tag in errors
        if e["type"] == "literal_error" and path.endswith("type") and tag == len(e["loc"]) - 2
    ]
    relevant = [
        err for err in errors if not any(err[0]["loc"][: len(m)] == m for m in mismatched)
    ] or errors
    first, param, value, _ = relevant[0]
    same = [e for e, p, _, _ in relevant if p == param]
    if first["type"] == "missing":
        return Refusal(
            "missing_required_parameter", f"Missing required parameter: '{param}'.", param
        )
    literals = [e for e in same if e["type"] == "literal_error"]
    if literals and isinstance(value, str):
        found = [v for e in literals for v in re.findall(r"'([^']*)'", e["ctx"]["expected"])]
        expected = list(dict.fromkeys(found))
        return Refusal(
            "invalid_value",
            f"Invalid value: '{value}'. Supported values are: {_listing(expected)}.",
            param,
        )
    wanted = _EXPECTED.get(first["type"])
    if wanted is None and literals:
        wanted = "one of " + " or ".join(e["ctx"]["expected"] for e in literals)
    if wanted is not None:
        return Refusal(
            "invalid_type",
            f"Invalid type for '{param}': expected {wanted}, but got {_kind(value)} instead.",
            param,
        )
    return Refusal("invalid_value", f"Invalid '{param}': {first['msg']}.", param)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    names = {str: "a string", int: "an integer", float: "a decimal", list: "an array"}
    return names.get(type(value), "an object")


def _listing(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _range(param: str, value: Any, low: float, high: float, integer: bool) -> Refusal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    kind = "integer" if integer else "decimal"
    if value < low:
        code, words, bound = f"{kind}_below_min_value", "below minimum", f">= {low}"
    elif value > high:
        code, words, bound = f"{kind}_above_max_value", "above maximum", f"<= {high}"
    else:
        return None
    return Refusal(
        code,
        f"Invalid '{param}': {kind} {words} value. Expected a value {bound}, but got {value} "
        "instead.",
        param,
    )


def _config_rules(prefix: str, config: dict[str, Any]) -> Refusal | None:
    """Rules shared by ``session`` and ``response`` (response.create)."""
    modalities = config.get("output_modalities")
    if isinstance(modalities, list) and {"text", "audio"} <= set(modalities):
        return Refusal(
            "invalid_value",
            f"Invalid value for '{prefix}.output_modalities': it is not possible to request "
            "both 'text' and 'audio'. Supported values are: ['audio'] and ['text'].",
            f"{prefix}.output_modalities",
        )
    tokens = config.get("max_output_tokens")
    if tokens != "inf":
        refusal = _range(f"{prefix}.max_output_tokens", tokens, 1, 4096, integer=True)
        if refusal:
            return refusal
    output = (config.get("audio") or {}).get("output") or {}
    refusal = _range(f"{prefix}.audio.output.speed", output.get("speed"), 0.25, 1.5, False)
    if refusal:
        return refusal
    voice = output.get("voice")
    if isinstance(voice, str) and voice not in VOICES:
        return Refusal(
            "invalid_value",
            f"Invalid value: '{voice}'. Supported values are: {_listing(VOICES)}.",
            f"{prefix}.audio.output.voice",
        )
    return None


def _value_rules(event: dict[str, Any]) -> Refusal | None:
    kind = event["type"]
    if kind == "session.update":
        session = event["session"]
        if session.get("type") != "realtime":  # a transcription session is another endpoint
            return Refusal(
                "invalid_value",
                f"Invalid value: '{session.get('type')}'. Supported values are: 'realtime'.",
                "session.type",
            )
        return _config_rules("session", session)
    if kind == "response.create":
        response = event.get("response") or {}
        conversation = response.get("conversation")
        if conversation is not None and conversation not in ("auto", "none"):
            return Refusal(
                "invalid_value",
                f"Invalid value: '{conversation}'. Supported values are: 'auto' and 'none'.",
                "response.conversation",
            )
        return _config_rules("response", response)
    if kind == "conversation.item.truncate":
        return _range("audio_end_ms", event["audio_end_ms"], 0, float("inf"), integer=True)
    return None


def _model_rules(session: dict[str, Any], today: date) -> Refusal | None:
    """The session model and the transcription: served on ``today``, and only the
    transcription fields the chosen model takes."""
    model = session.get("model")
    if isinstance(model, str):
        if models.gone(model, today):
            return Refusal("model_not_found", models.gone_message(model), "session.model")
        if not models.model_ok(model):
            return Refusal("model_not_found", f"Invalid model: '{model}'.", "session.model")
    transcription = ((session.get("audio") or {}).get("input") or {}).get("transcription")
    return _transcription_rules(transcription, today) if transcription else None


def _transcription_rules(config: dict[str, Any], today: date) -> Refusal | None:
    prefix = "session.audio.input.transcription"
    model = config.get("model")
    if isinstance(model, str) and models.gone(model, today):
        return Refusal("model_not_found", models.gone_message(model), f"{prefix}.model")
    if isinstance(model, str) and model not in models.TRANSCRIPTION_MODELS:
        served = [m for m in models.TRANSCRIPTION_MODELS if not models.gone(m, today)]
        message = f"Invalid value: '{model}'. Supported values are: {_listing(served)}."
        return Refusal("invalid_value", message, f"{prefix}.model")
    for name, allowed in (
        ("keywords", models.KEYWORD_MODELS),
        ("languages", models.KEYWORD_MODELS),
        ("delay", models.DELAY_MODELS),
    ):
        if config.get(name) is not None and model not in allowed:
            return _unsupported(f"{prefix}.{name}", model)
    if config.get("prompt") is not None and model in models.NO_PROMPT_MODELS:
        return _unsupported(f"{prefix}.prompt", model)
    if config.get("language") is not None and config.get("languages") is not None:
        return Refusal(
            "invalid_value",
            f"Invalid value for '{prefix}.languages': 'language' and 'languages' cannot be "
            "set together.",
            f"{prefix}.languages",
        )
    return None


def _unsupported(param: str, model: Any) -> Refusal:
    return Refusal(
        "unsupported_parameter",
        f"Unsupported parameter: '{param}' is not supported with the transcription model "
        f"'{model}'.",
        param,
    )
