"""What the call bridge is configured with and what it returns: plain values, no I/O.

Kept apart from :mod:`relay.twilio_bridge` so the bridge module stays about decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from common import models
from common.end_reasons import EndReason
from relay.call_tools import ToolOutcome, ToolSettings
from relay.handover import LoadResume
from relay.reconnect import Reconnect

if TYPE_CHECKING:
    from common.config import Config

#: OpenAI errors that are expected races, not faults: a cancel that raced ``response.done``, a
#: response asked for while one is active, a commit of an empty buffer.
BENIGN_ERRORS = {
    "response_cancel_not_active",
    "conversation_already_has_active_response",
    "input_audio_buffer_commit_empty",
}


@dataclass(frozen=True)
class BridgeSettings:
    model: str
    voice: str = "ash"
    turn_detection: str = "server_vad"
    instructions: str = ""
    time_limit_s: float = 600.0
    goodbye_fallback_s: float = 20.0
    transcription_model: str = models.DEFAULT_TRANSCRIPTION_MODEL
    transcription_keywords: tuple[str, ...] = models.PRODUCT_WORDS
    reconnect_attempts: int = 3
    #: The assistant's tools on live calls (None: a session without tools).
    tools: ToolSettings | None = None

    @classmethod
    def from_config(cls, cfg: Config) -> BridgeSettings:
        return cls(
            model=cfg.openai_realtime_model,
            voice=cfg.realtime_voice,
            turn_detection=cfg.realtime_turn_detection,
            time_limit_s=cfg.session_time_limit_seconds,
            goodbye_fallback_s=cfg.goodbye_fallback_seconds,
            transcription_model=cfg.openai_transcription_model,
            transcription_keywords=cfg.transcription_keywords,
            reconnect_attempts=cfg.upstream_reconnect_attempts,
            tools=ToolSettings.from_config(cfg),
        )


@dataclass(frozen=True)
class ToTwilio:
    text: str


@dataclass(frozen=True)
class ToOpenAI:
    text: str


@dataclass(frozen=True)
class EndCall:
    """Close the stream. ``deliberate`` ends mean a plain hang-up; others get the apology."""

    reason: EndReason
    deliberate: bool
    close_code: int = 1000


@dataclass(frozen=True)
class RunTool:
    """Perform ``outcome.action`` off the frame loops (:mod:`relay.tool_runner`), then give
    the bridge's ``on_tool_result`` what :func:`relay.call_actions.perform` returned."""

    outcome: ToolOutcome


Output = ToTwilio | ToOpenAI | EndCall | Reconnect | LoadResume | RunTool


@dataclass
class Transcript:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, who: str, text: str) -> None:
        if text.strip():
            self.lines.append((who, text.strip()))


def dumps(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode()


def transcript_of(response: dict[str, Any]) -> str:
    """The audio transcript in a ``response.done`` payload's output items (GA shape)."""
    parts = []
    for item in response.get("output") or []:
        for content in (item.get("content") or []) if isinstance(item, dict) else []:
            if isinstance(content, dict) and isinstance(content.get("transcript"), str):
                parts.append(content["transcript"])
    return " ".join(parts)
