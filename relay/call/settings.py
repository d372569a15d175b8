"""What the call bridge is configured with (from :class:`common.config.Config`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from common import models
from relay.call.tools import ToolSettings

if TYPE_CHECKING:
    from common.config import Config


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
