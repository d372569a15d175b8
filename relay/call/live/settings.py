"""What a GPT-Live call is configured with (from :class:`common.config.Config`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from common import prompts
from relay.call.tools import ToolSettings

if TYPE_CHECKING:
    from common.config import Config


@dataclass(frozen=True)
class LiveSettings:
    model: str = "gpt-live-1.1"
    voice: str = "marin"
    #: The Responses model the voice model delegates to (it runs the tools).
    delegation_model: str = "gpt-5.5"
    time_limit_s: float = 600.0
    goodbye_fallback_s: float = 20.0
    reconnect_attempts: int = 3
    tools: ToolSettings | None = None

    @classmethod
    def from_config(cls, cfg: Config) -> LiveSettings:
        return cls(
            model=cfg.openai_live_model,
            voice=cfg.realtime_voice,
            delegation_model=cfg.live_delegation_model or cfg.openai_chat_model,
            time_limit_s=cfg.session_time_limit_seconds,
            goodbye_fallback_s=cfg.goodbye_fallback_seconds,
            reconnect_attempts=cfg.upstream_reconnect_attempts,
            tools=ToolSettings.from_config(cfg),
        )

    def voice_instructions(self, tools: bool) -> str:
        """The voice model's short prompt: how to speak, and when to hand work to the
        backend (immutable for the session)."""
        return prompts.LIVE_VOICE_INSTRUCTIONS + (prompts.LIVE_DELEGATION_NOTE if tools else "")

    def business_instructions(self, tools: bool) -> str:
        """The backend's prompt: GateFrames' business rules and the tool workflows."""
        base = prompts.voice_prompt()
        return base + prompts.TOOL_INSTRUCTIONS if tools else base
