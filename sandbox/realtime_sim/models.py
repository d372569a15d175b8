"""Which models the simulated service serves, until when, and what each transcription model takes.

The simulator keeps its own copy of the shutdown dates the openai SDK pinned in requirements.txt
announces in its "Deprecated values" notes (tests/sandbox/test_realtime_sim_models.py compares
the copy with the installed SDK). Simulators never import the product's code: a simulator that
read the product's table could not catch a product naming a model OpenAI no longer serves.

A model is gone on its shutdown date (UTC): a connection naming it is refused like an unknown
model, and so is a ``session.update`` naming it as the session or the transcription model. The
simulated "today" is the real UTC date unless a test fixes it (``GET
/_sandbox/clock?today=YYYY-MM-DD``; ``today=`` or ``/_sandbox/reset`` returns to the real date).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import get_args

from openai.types.realtime import AudioTranscription

#: Realtime session models (and their dated snapshots) the service accepts in ``?model=``.
GA_MODELS = (
    "gpt-realtime",
    "gpt-realtime-1.5",
    "gpt-realtime-2",
    "gpt-realtime-2.1",
    "gpt-realtime-2.1-mini",
    "gpt-realtime-mini",
)
#: ``types/realtime/realtime_session_create_request.py`` and ``audio_transcription.py``.
SHUTDOWNS: dict[str, date] = {
    **dict.fromkeys(
        (
            "gpt-realtime",
            "gpt-realtime-2025-08-28",
            "gpt-realtime-mini",
            "gpt-realtime-mini-2025-12-15",
            "gpt-audio-mini",
            "gpt-audio-mini-2025-12-15",
        ),
        date(2027, 1, 20),
    ),
    **dict.fromkeys(
        (
            "whisper-1",
            "gpt-4o-transcribe",
            "gpt-4o-mini-transcribe",
            "gpt-4o-mini-transcribe-2025-12-15",
            "gpt-4o-transcribe-diarize",
        ),
        date(2027, 2, 26),
    ),
}
DEPRECATIONS_URL = "https://developers.openai.com/api/docs/deprecations"


def _literals(annotation: object) -> list[str]:
    if isinstance(annotation, str):
        return [annotation]
    return [value for arg in get_args(annotation) for value in _literals(arg)]


#: The transcription models a GA session accepts (the SDK's ``AudioTranscription.model``).
TRANSCRIPTION_MODELS = tuple(_literals(AudioTranscription.model_fields["model"].annotation))
#: What the SDK's field notes allow per model: ``keywords`` and ``languages`` "Supported by
#: `gpt-transcribe` and `gpt-live-transcribe`"; ``delay`` "Only supported with
#: `gpt-realtime-whisper`"; ``prompt`` "not supported with `gpt-realtime-whisper`".
KEYWORD_MODELS = ("gpt-transcribe", "gpt-live-transcribe")
DELAY_MODELS = ("gpt-realtime-whisper",)
NO_PROMPT_MODELS = ("gpt-realtime-whisper",)


class Clock:
    """The simulated date: the real UTC date, or the one a test fixed."""

    def __init__(self) -> None:
        self.fixed: date | None = None

    def today(self) -> date:
        return self.fixed or datetime.now(UTC).date()


CLOCK = Clock()


def model_ok(model: str) -> bool:
    """A Realtime session model the service knows (shut down or not)."""
    return any(model == m or model.startswith(m + "-20") for m in GA_MODELS)


def gone(model: str, today: date) -> bool:
    shutdown = SHUTDOWNS.get(model)
    return shutdown is not None and today >= shutdown


def gone_message(model: str) -> str:
    """What OpenAI says of a model it has shut down."""
    return f"The model `{model}` has been deprecated, learn more here: {DEPRECATIONS_URL}"
