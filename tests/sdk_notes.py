"""What the pinned openai SDK says in prose: the "Deprecated values" notes (announced model
shutdowns) and the per-field notes on which transcription models take a field. Read from the
installed SDK's source, so the product's table and the simulator's copy are each checked
against the SDK rather than against each other."""

from __future__ import annotations

import inspect
import re
from datetime import date
from pathlib import Path
from typing import get_args

import openai

SDK = Path(openai.__file__).parent
REALTIME_NOTES = "types/realtime/realtime_session_create_request.py"
TRANSCRIPTION_NOTES = "types/realtime/audio_transcription.py"
CHAT_NOTES = "types/shared/chat_model.py"


def shutdowns(relative: str) -> dict[str, date]:
    """Every ``- "a", "b": Announced shutdown date: D`` line of a "Deprecated values" note."""
    text = (SDK / relative).read_text()
    notes = text[text.index("Deprecated values") :]
    found = {}
    pattern = r'-\s+((?:"[^"]+",?\s*)+):\s*Announced\s+shutdown\s+date:\s*(\d{4}-\d{2}-\d{2})'
    for match in re.finditer(pattern, notes):
        for model in re.findall(r'"([^"]+)"', match.group(1)):
            found[model] = date.fromisoformat(match.group(2))
    return found


def field_note(model_class: type, field: str) -> str:
    """The docstring under ``field`` in ``model_class``'s source, on one line."""
    source = inspect.getsource(model_class)
    return " ".join(source[source.index(f"    {field}:") :].split('"""')[1].split())


def models_named(note: str, lead: str) -> set[str]:
    """The backticked models in the sentence of ``note`` that starts with ``lead``."""
    sentence = re.search(re.escape(lead) + r"(.*?)\.(?:\s|$)", note)
    assert sentence is not None, (lead, note)
    return set(re.findall(r"`([^`]+)`", sentence.group(1)))


def literals(annotation: object) -> set[str]:
    """Every string literal inside a (nested) type annotation."""
    if isinstance(annotation, str):
        return {annotation}
    return {value for arg in get_args(annotation) for value in literals(arg)}
