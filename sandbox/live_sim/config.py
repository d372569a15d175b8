"""The session configuration rules of GPT-Live that the SDK's types leave to the service.

``session.start`` (after :mod:`sandbox.live_sim.schema` checked its shape):

- ``model``: ``gpt-live-1`` or ``gpt-live-1.1`` (or a dated snapshot ``gpt-live-1.1-2026-11-20``);
  anything else, or a model past its shutdown date, is ``model_not_found`` (neither model has a
  shutdown date; ``/_sandbox/models?shutdown=MODEL:YYYY-MM-DD`` sets one to test the refusal);
- ``audio.format``: ``audio/pcm`` at 24000 or 16000, ``audio/pcmu`` / ``audio/pcma`` at 8000
  (else ``invalid_value`` on ``session.audio.format.rate``); default ``audio/pcm`` 24000;
- ``audio.output.voice``: a built-in voice (``BuiltInVoice``) or ``{"id": ...}``; default ``marin``;
- ``input``: at most 128 messages; ``instructions``: at most 16,384 tokens (~4 characters each);
- ``delegation.responses.tools``: function names as Responses requires them, each name once.

``session.update`` may change only ``delegation`` settings (same ``type``) and ``triggers``: any
other session field (``model``, ``audio``, ``instructions``, ``input``, ...) and a different
delegation type are ``immutable_field_update``; a key no session config has is
``unknown_parameter``.
"""

from __future__ import annotations

import copy
import datetime
import re
import secrets
import time
from typing import Any, get_args

from openai.types.live import BuiltInVoice, SessionConfig, SessionUpdateConfig

from sandbox.live_sim.audio import RATES
from sandbox.live_sim.schema import Refusal, listing, unknown_parameter

MODELS = ("gpt-live-1", "gpt-live-1.1")
VOICES: list[str] = list(get_args(BuiltInVoice))
SESSION_KEYS = {f.alias or n for n, f in SessionConfig.model_fields.items()}
UPDATE_KEYS = {f.alias or n for n, f in SessionUpdateConfig.model_fields.items()}
MAX_INPUT_ITEMS = 128
INSTRUCTIONS_MAX_CHARS = 16384 * 4
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def base_model(model: str) -> str | None:
    """The Live model ``model`` names (itself or a dated snapshot of it), else None."""
    name = _SNAPSHOT.sub("", model)
    return name if name in MODELS else None


def model_refusal(model: str, shutdowns: dict[str, datetime.date]) -> Refusal | None:
    base = base_model(model)
    if base is None:
        return Refusal(
            "model_not_found",
            f"The model '{model}' does not exist or you do not have access to it. Supported "
            f"Live models are: {listing(list(MODELS))}.",
            "session.model",
        )
    shutdown = shutdowns.get(model) or shutdowns.get(base)
    if shutdown is not None and datetime.date.today() >= shutdown:
        return Refusal(
            "model_not_found",
            f"The model '{model}' was shut down on {shutdown.isoformat()}.",
            "session.model",
        )
    return None


def start_refusal(session: dict[str, Any], shutdowns: dict[str, datetime.date]) -> Refusal | None:
    """None if the service would start a session with this (shape-checked) config."""
    refusal = model_refusal(session["model"], shutdowns)
    if refusal is not None:
        return refusal
    audio = session.get("audio") or {}
    fmt = audio.get("format")
    if fmt and fmt["rate"] not in RATES[fmt["type"]]:
        allowed = [str(r) for r in RATES[fmt["type"]]]
        return Refusal(
            "invalid_value",
            f"Invalid value: {fmt['rate']}. Supported values for '{fmt['type']}' are: "
            f"{listing(allowed)}.",
            "session.audio.format.rate",
        )
    voice = (audio.get("output") or {}).get("voice")
    if isinstance(voice, str) and voice not in VOICES:
        return Refusal(
            "invalid_value",
            f"Invalid value: '{voice}'. Supported values are: {listing(VOICES)}.",
            "session.audio.output.voice",
        )
    if isinstance(voice, dict) and not voice["id"].strip():
        return Refusal(
            "invalid_value", "A custom voice needs an id.", "session.audio.output.voice.id"
        )
    if len(session.get("input") or []) > MAX_INPUT_ITEMS:
        return Refusal(
            "array_above_max_length",
            f"Invalid 'session.input': array too long. Expected an array with maximum length "
            f"{MAX_INPUT_ITEMS}, but got an array with length {len(session['input'])} instead.",
            "session.input",
        )
    if len(session.get("instructions") or "") > INSTRUCTIONS_MAX_CHARS:
        return Refusal(
            "string_above_max_length",
            "Invalid 'session.instructions': string too long. Expected at most 16384 tokens.",
            "session.instructions",
        )
    return tools_refusal(session.get("delegation"), "session.delegation")


def tools_refusal(delegation: dict[str, Any] | None, prefix: str) -> Refusal | None:
    backend = (delegation or {}).get("responses") or {}
    seen: set[str] = set()
    for i, tool in enumerate(backend.get("tools") or []):
        if tool.get("type") != "function":
            continue
        name, param = tool["name"], f"{prefix}.responses.tools[{i}].name"
        if not _TOOL_NAME.match(name):
            return Refusal(
                "invalid_value",
                f"Invalid '{param}': string does not match pattern. Expected a string that "
                f"matches the pattern '^[a-zA-Z0-9_-]+$'.",
                param,
            )
        if name in seen:
            return Refusal("invalid_value", f"Duplicate tool name: '{name}'.", param)
        seen.add(name)
    return None


def resolve(session: dict[str, Any], lifetime_s: float) -> dict[str, Any]:
    """The ``SessionResource`` of ``session.started``: the config with server defaults."""
    audio = session.get("audio") or {}
    resolved: dict[str, Any] = {
        "id": new_id("sess"),
        "expires_at": int(time.time() + lifetime_s),
        "model": session["model"],
        "status": "active",
        "audio": {
            "format": audio.get("format") or {"type": "audio/pcm", "rate": 24000},
            "output": {"voice": (audio.get("output") or {}).get("voice") or "marin"},
        },
        "delegation": copy.deepcopy(session.get("delegation")),
        "input": copy.deepcopy(session.get("input") or []),
        "instructions": session.get("instructions") or "",
        "store": bool(session.get("store", False)),
    }
    if resolved["delegation"] is not None:
        resolved["delegation"].setdefault("acknowledgement_delay_ms", 0)
    for name in ("safety_identifier", "triggers", "client"):
        if session.get(name) is not None:
            resolved[name] = copy.deepcopy(session[name])
    return resolved


def update_keys_refusal(update: Any) -> Refusal | None:
    """Checked before the shape: a startup-only field is immutable, not merely unknown."""
    if not isinstance(update, dict):
        return None
    for name in update:
        if name in UPDATE_KEYS:
            continue
        if name in SESSION_KEYS:
            return Refusal(
                "immutable_field_update",
                f"'session.{name}' cannot be changed after the session has started.",
                f"session.{name}",
            )
        return unknown_parameter(f"session.{name}")
    return None


def update_refusal(current: dict[str, Any], update: dict[str, Any]) -> Refusal | None:
    """A shape-checked update against the running session."""
    if "delegation" in update:
        now = (current.get("delegation") or {"type": "client"})["type"]
        wanted = (update["delegation"] or {"type": "client"})["type"]
        if wanted != now:
            return Refusal(
                "immutable_field_update",
                f"The delegation type cannot change after startup (it is '{now}').",
                "session.delegation.type",
            )
        return tools_refusal(update["delegation"], "session.delegation")
    return None


def apply_update(current: dict[str, Any], update: dict[str, Any]) -> None:
    """Merge an accepted update: omitted settings keep their values."""
    if "triggers" in update:
        current["triggers"] = copy.deepcopy(update["triggers"])
    delegation = update.get("delegation")
    if delegation is None or current.get("delegation") is None:
        return
    target = current["delegation"]
    if "acknowledgement_delay_ms" in delegation:
        target["acknowledgement_delay_ms"] = delegation["acknowledgement_delay_ms"]
    kind = delegation["type"]
    for name, value in (delegation.get(kind) or {}).items():
        target.setdefault(kind, {})[name] = copy.deepcopy(value)
