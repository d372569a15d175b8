"""OpenAI model lifetimes, and the caller-side transcription a Realtime session is given.

:data:`SHUTDOWNS` holds the "Announced shutdown date" of every model the "Deprecated values"
notes of the openai SDK pinned in requirements.txt name: the Realtime session model
(``types/realtime/realtime_session_create_request.py``), the transcription model
(``types/realtime/audio_transcription.py``) and the chat model (``types/shared/chat_model.py``).
tests/unit/test_models.py re-reads those notes from the installed SDK, so a new pin with new
dates fails the tests until this table follows it.

A configured model that shuts down within :data:`WARN_DAYS` gets a warning at every process
start and in ``python -m common.config check``; one already shut down is refused there (a
:class:`common.config.ConfigError`), so no process starts to name a model OpenAI no longer
serves. Dates are compared with the UTC date; a model is gone on its shutdown date.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from common.config import Config

#: Caller-side transcription: OpenAI's streaming transcription model for live audio, with no
#: announced shutdown (the README's "Models" section says why this one).
DEFAULT_TRANSCRIPTION_MODEL = "gpt-live-transcribe"
#: TRANSCRIPTION_KEYWORDS' default: the product words a caller says that a transcriber misspells.
PRODUCT_WORDS = ("GateFrames",)
#: The models that take ``keywords`` (and ``languages``) in ``audio.input.transcription``
#: (``AudioTranscriptionParam``: "Supported by `gpt-transcribe` and `gpt-live-transcribe`").
KEYWORD_MODELS = frozenset({"gpt-transcribe", "gpt-live-transcribe"})
#: A model that shuts down this many days from now or sooner is warned about.
WARN_DAYS = 90
#: The variables whose model is checked at start.
MODEL_VARIABLES = ("OPENAI_REALTIME_MODEL", "OPENAI_TRANSCRIPTION_MODEL", "OPENAI_CHAT_MODEL")

_BY_DATE: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Realtime sessions (and gpt-audio-mini, which the chat notes list too).
    ("2027-01-20", ("gpt-realtime", "gpt-realtime-2025-08-28", "gpt-realtime-mini",
                    "gpt-realtime-mini-2025-12-15", "gpt-audio-mini", "gpt-audio-mini-2025-12-15")),
    # Transcription.
    ("2027-02-26", ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
                    "gpt-4o-mini-transcribe-2025-12-15", "gpt-4o-transcribe-diarize")),
    # Chat.
    ("2027-04-01", ("gpt-5.4-nano", "gpt-5.4-nano-2026-03-17", "gpt-5.1", "gpt-5.1-2025-11-13")),
    ("2027-01-14", ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14",
                    "gpt-4o", "gpt-4o-2024-11-20", "gpt-4o-2024-08-06", "gpt-4o-mini",
                    "gpt-4o-mini-2024-07-18")),
    ("2026-12-11", ("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-2025-08-07",
                    "gpt-5-mini-2025-08-07", "gpt-5-nano-2025-08-07", "o3", "o3-2025-04-16")),
    ("2026-10-23", ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", "o4-mini", "o4-mini-2025-04-16",
                    "o3-mini", "o3-mini-2025-01-31", "o1", "o1-2024-12-17", "gpt-4o-2024-05-13",
                    "gpt-4-turbo", "gpt-4-turbo-2024-04-09", "gpt-4-1106-preview", "gpt-4",
                    "gpt-4-0613", "gpt-3.5-turbo", "gpt-3.5-turbo-0125")),
    ("2026-09-28", ("gpt-3.5-turbo-1106",)),
    ("2026-08-10", ("gpt-5.3-chat-latest", "gpt-5.2-chat-latest")),
    ("2026-07-23", ("gpt-5.1-codex", "gpt-5.1-chat-latest", "gpt-5-chat-latest",
                    "gpt-4o-search-preview", "gpt-4o-mini-search-preview",
                    "gpt-4o-search-preview-2025-03-11", "gpt-4o-mini-search-preview-2025-03-11")),
    ("2026-05-07", ("gpt-4o-audio-preview", "gpt-4o-audio-preview-2024-12-17",
                    "gpt-4o-audio-preview-2025-06-03", "gpt-4o-mini-audio-preview",
                    "gpt-4o-mini-audio-preview-2024-12-17")),
    ("2026-03-26", ("gpt-4-0125-preview", "gpt-4-turbo-preview", "gpt-4-0314")),
    ("2026-02-17", ("chatgpt-4o-latest",)),
    ("2026-02-12", ("codex-mini-latest",)),
    ("2025-10-27", ("o1-mini", "o1-mini-2024-09-12")),
    ("2025-10-10", ("gpt-4o-audio-preview-2024-10-01",)),
    ("2025-07-28", ("o1-preview", "o1-preview-2024-09-12")),
    ("2025-06-06", ("gpt-4-32k", "gpt-4-32k-0314", "gpt-4-32k-0613")),
    ("2024-12-06", ("gpt-4-vision-preview",)),
    ("2024-09-13", ("gpt-3.5-turbo-16k", "gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613",
                    "gpt-3.5-turbo-16k-0613")),
)  # fmt: skip
#: Model id → the date OpenAI stops serving it.
SHUTDOWNS: dict[str, date] = {
    model: date.fromisoformat(day) for day, group in _BY_DATE for model in group
}

_reported: set[str] = set()  # warnings this process has logged (see warn_at_start)


def keyword_list(name: str, raw: str) -> tuple[str, ...]:
    """A config parser: comma-separated words or phrases; ``none`` for none."""
    if raw.strip().lower() == "none":
        return ()
    return tuple(word.strip() for word in raw.split(",") if word.strip())


def utc_today() -> date:
    """Today's UTC date (shutdown dates are UTC dates)."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class Lifetime:
    """A configured model with an announced shutdown."""

    variable: str
    model: str
    shutdown: date
    days_left: int

    @property
    def gone(self) -> bool:
        return self.days_left <= 0

    def message(self) -> str:
        setting = f"{self.variable}={self.model}"
        if self.gone:
            return (
                f"{setting}: OpenAI shut this model down on {self.shutdown.isoformat()}; "
                "choose a model without an announced shutdown (README: Models)"
            )
        return (
            f"{setting} shuts down on {self.shutdown.isoformat()} (in {self.days_left} "
            f"day{'s' if self.days_left > 1 else ''}); "
            "choose a model without an announced shutdown before then (README: Models)"
        )


def settings_of(cfg: Config) -> dict[str, str]:
    """The checked variables and the model each names."""
    return {name: getattr(cfg, name.lower()) for name in MODEL_VARIABLES}


def lifetimes(settings: Mapping[str, str], today: date) -> list[Lifetime]:
    """The settings whose model shuts down within :data:`WARN_DAYS` of ``today``, or has."""
    found = []
    for variable, model in settings.items():
        shutdown = SHUTDOWNS.get(model)
        if shutdown is not None and (shutdown - today).days <= WARN_DAYS:
            found.append(Lifetime(variable, model, shutdown, (shutdown - today).days))
    return found


def refusals(cfg: Config, today: date | None = None) -> list[str]:
    """One problem per configured model already shut down (a process must not start)."""
    found = lifetimes(settings_of(cfg), today or utc_today())
    return [lt.message() for lt in found if lt.gone]


def warnings(cfg: Config, today: date | None = None) -> list[str]:
    """One warning per configured model that shuts down within :data:`WARN_DAYS`."""
    found = lifetimes(settings_of(cfg), today or utc_today())
    return [lt.message() for lt in found if not lt.gone]


def warn_at_start(cfg: Config, log: logging.Logger) -> None:
    """Log each shutdown warning once per process (today the worker builds the web app, so
    both its start hooks would otherwise say it twice)."""
    for message in warnings(cfg):
        if message not in _reported:
            _reported.add(message)
            log.warning("model lifetime: %s", message)


def transcription(model: str, keywords: Sequence[str]) -> dict[str, Any]:
    """``session.audio.input.transcription`` for ``model``, with ``keywords`` only where the
    SDK's types say the model takes them."""
    config: dict[str, Any] = {"model": model}
    if keywords and model in KEYWORD_MODELS:
        config["keywords"] = list(keywords)
    return config


def default_transcription() -> dict[str, Any]:
    """The transcription a session gets when nothing is configured."""
    return transcription(DEFAULT_TRANSCRIPTION_MODEL, PRODUCT_WORDS)


def transcription_of(cfg: Config) -> dict[str, Any]:
    """The configured caller-side transcription (phone calls and browser sessions alike)."""
    return transcription(cfg.openai_transcription_model, cfg.transcription_keywords)
