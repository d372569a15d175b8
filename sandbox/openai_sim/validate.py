"""Chat Completions request validation with the real API's error bodies.

The point is to fail the way api.openai.com fails, so a request the simulator accepts is one
the real service accepts: unknown arguments, malformed ``messages``, ``max_tokens`` or a
non-default ``temperature`` on reasoning models (gpt-5*, o1/o3/o4), retired or non-chat models.
Messages are the ones seen in real responses (quoted in public issue threads).

Content parts by role follow the openai SDK's message param types: user ``text``,
``image_url``, ``input_audio``, ``file``; assistant ``text``, ``refusal``; system, developer
and tool ``text`` only; function messages take a string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

KNOWN_PARAMS = frozenset(
    """messages model audio frequency_penalty function_call functions logit_bias logprobs
    max_completion_tokens max_tokens metadata modalities moderation n parallel_tool_calls
    prediction presence_penalty prompt_cache_key prompt_cache_options prompt_cache_retention
    reasoning_effort response_format safety_identifier seed service_tier stop store stream
    stream_options temperature tool_choice tools top_logprobs top_p user verbosity
    web_search_options""".split()  # noqa: SIM905 - the parameter list of openai 3.51
)
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
#: Every content part type the API knows (its error for an unknown type lists these).
PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
#: What each role may carry (openai.types.chat.ChatCompletion*MessageParam).
ROLE_PART_TYPES: dict[str, tuple[str, ...]] = {
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "system": ("text",),
    "developer": ("text",),
    "tool": ("text",),
}
AUDIO_FORMATS = ("wav", "mp3")
REASONING = re.compile(r"^(gpt-5|o1|o3|o4)")
NOT_CHAT = re.compile(r"realtime|tts|whisper|transcribe|embedding|dall-e|moderation")


class OpenAIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}


def is_reasoning(model: str) -> bool:
    return bool(REASONING.match(model)) and "-chat" not in model


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _type_error(param: str, expected: str, value: Any) -> OpenAIError:
    return OpenAIError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.",
        param,
        "invalid_type",
    )


def _missing(param: str) -> OpenAIError:
    return OpenAIError(
        400, f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    )


def _empty(param: str) -> OpenAIError:
    return OpenAIError(
        400,
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, "
        "but got an empty array instead.",
        param,
        "empty_array",
    )


def _choice(value: Any, allowed: tuple[str, ...], param: str) -> OpenAIError:
    quoted = [f"'{a}'" for a in allowed]
    if len(quoted) <= 2:
        listed = " and ".join(quoted)
    else:
        listed = ", ".join(quoted[:-1]) + ", and " + quoted[-1]
    return OpenAIError(
        400, f"Invalid value: '{value}'. Supported values are: {listed}.", param, "invalid_value"
    )


def validate(body: Any) -> None:
    """Raise ``OpenAIError`` for anything the real endpoint would refuse."""
    if not isinstance(body, dict):
        raise OpenAIError(
            400, f"Invalid type for request body: expected an object, but got {_kind(body)}."
        )
    unknown = sorted(set(body) - KNOWN_PARAMS)
    if unknown:
        noun = "argument" if len(unknown) == 1 else "arguments"
        raise OpenAIError(400, f"Unrecognized request {noun} supplied: {', '.join(unknown)}")
    model = body.get("model")
    if model is None:
        raise OpenAIError(400, "you must provide a model parameter")
    if not isinstance(model, str):
        raise _type_error("model", "a string", model)
    _messages(body.get("messages"))
    _numbers(body)
    if body.get("stream"):
        raise OpenAIError(
            400, "streaming not supported by the simulator", "stream", "unsupported_parameter"
        )
    _model_rules(model, body)


def _messages(messages: Any) -> None:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise _empty("messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _type_error(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if role not in ROLES:
            raise _choice(role, ROLES, f"{where}.role")
        content = message.get("content")
        if content is None:
            if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
                continue
            raise _missing(f"{where}.content")
        if role == "tool" and not message.get("tool_call_id"):
            raise _missing(f"{where}.tool_call_id")
        if isinstance(content, str):
            continue
        if role == "function":
            raise _type_error(f"{where}.content", "a string", content)
        if not isinstance(content, list):
            raise _type_error(f"{where}.content", "one of a string or array of objects", content)
        if not content:
            raise _empty(f"{where}.content")
        for j, part in enumerate(content):
            _part(part, role, where, f"{where}.content[{j}]")


def _part(part: Any, role: str, message: str, where: str) -> None:
    if not isinstance(part, dict):
        raise _type_error(where, "an object", part)
    kind = part.get("type")
    if kind is None:
        raise _missing(f"{where}.type")
    if kind not in PART_TYPES:
        raise _choice(kind, PART_TYPES, f"{where}.type")
    allowed = ROLE_PART_TYPES[role]
    if kind == "image_url" and role != "user":
        # the wording of the real refusal (openai/openai-node#1030, OpenHands#7700)
        raise OpenAIError(
            400,
            f"Invalid '{message}'. Image URLs are only allowed for messages with role 'user', "
            f"but this message with role '{role}' contains an image URL.",
            f"{where}.type",
            "invalid_value",
        )
    if kind not in allowed:
        raise _choice(kind, allowed, f"{where}.type")
    PART_CHECKS[kind](part, where)


def _string_field(part: dict[str, Any], name: str, where: str) -> None:
    if name not in part:
        raise _missing(f"{where}.{name}")
    if not isinstance(part[name], str):
        raise _type_error(f"{where}.{name}", "a string", part[name])


def _image_url(part: dict[str, Any], where: str) -> None:
    image = part.get("image_url")
    if image is None:
        raise _missing(f"{where}.image_url")
    if not isinstance(image, dict):
        raise _type_error(f"{where}.image_url", "an object", image)
    url = image.get("url")
    if not isinstance(url, str) or not url:
        raise _missing(f"{where}.image_url.url")
    if not url.startswith(("http://", "https://", "data:image/")):
        raise OpenAIError(
            400,
            f"Invalid '{where}.image_url.url'. Expected a valid URL, but got a value with an "
            "invalid format.",
            f"{where}.image_url.url",
            "invalid_value",
        )


def _input_audio(part: dict[str, Any], where: str) -> None:
    audio = part.get("input_audio")
    if audio is None:
        raise _missing(f"{where}.input_audio")
    if not isinstance(audio, dict):
        raise _type_error(f"{where}.input_audio", "an object", audio)
    for name in ("data", "format"):
        _string_field(audio, name, f"{where}.input_audio")
    if audio["format"] not in AUDIO_FORMATS:
        raise _choice(audio["format"], AUDIO_FORMATS, f"{where}.input_audio.format")


def _file(part: dict[str, Any], where: str) -> None:
    file = part.get("file")
    if file is None:
        raise _missing(f"{where}.file")
    if not isinstance(file, dict):
        raise _type_error(f"{where}.file", "an object", file)


PART_CHECKS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "text": lambda part, where: _string_field(part, "text", where),
    "refusal": lambda part, where: _string_field(part, "refusal", where),
    "image_url": _image_url,
    "input_audio": _input_audio,
    "file": _file,
}


def _numbers(body: dict[str, Any]) -> None:
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise _type_error(name, "an integer", value)
        if value < 1:
            raise OpenAIError(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
                f"but got {value} instead.",
                name,
                "integer_below_min_value",
            )
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise _type_error("temperature", "a decimal", temperature)
        if not 0 <= temperature <= 2:
            side, bound = (
                ("above maximum", "<= 2") if temperature > 2 else ("below minimum", ">= 0")
            )
            raise OpenAIError(
                400,
                f"Invalid 'temperature': decimal {side} value. Expected a value {bound}, "
                f"but got {json.dumps(temperature)} instead.",
                "temperature",
                f"decimal_{side.replace(' ', '_')}_value",
            )


def _model_rules(model: str, body: dict[str, Any]) -> None:
    if model.startswith("gpt-4o-realtime-preview"):
        raise OpenAIError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            None,
            "model_not_found",
        )
    if NOT_CHAT.search(model):
        raise OpenAIError(
            404,
            "This is not a chat model and thus not supported in the v1/chat/completions "
            "endpoint. Did you mean to use v1/completions?",
        )
    if is_reasoning(model):
        if body.get("max_tokens") is not None:
            raise OpenAIError(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
        temperature = body.get("temperature")
        if temperature is not None and temperature != 1:
            raise OpenAIError(
                400,
                f"Unsupported value: 'temperature' does not support {json.dumps(temperature)} "
                "with this model. Only the default (1) value is supported.",
                "temperature",
                "unsupported_value",
            )
    elif body.get("reasoning_effort") is not None:
        raise OpenAIError(
            400,
            "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            "reasoning_effort",
            "unsupported_parameter",
        )
