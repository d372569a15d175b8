"""Which voice engine answers a phone call (``VOICE_ENGINE``): OpenAI Realtime
(:class:`relay.call.bridge.TwilioBridge`) or GPT-Live (:class:`relay.call.live.bridge.LiveBridge`).
Both take the same Media Streams events and give the same outputs, so the call session does
not care which it drives. Browser sessions always speak Realtime (the website's client does)."""

from __future__ import annotations

from common.config import Config
from relay.call.bridge import TwilioBridge
from relay.call.live.bridge import LiveBridge
from relay.call.live.settings import LiveSettings
from relay.call.settings import BridgeSettings
from relay.wire.upstream import Upstream, connect, realtime_url

Bridge = TwilioBridge | LiveBridge


def new_bridge(cfg: Config, now: float, call_sid: str) -> Bridge:
    if cfg.voice_engine == "live":
        return LiveBridge(LiveSettings.from_config(cfg), now, call_sid=call_sid)
    return TwilioBridge(BridgeSettings.from_config(cfg), now, call_sid=call_sid)


def connect_call_upstream(cfg: Config) -> Upstream:
    """Open the engine's WebSocket: Realtime names its model in the query string; GPT-Live
    takes none (the model goes in ``session.start``)."""
    if cfg.voice_engine == "live":
        return connect(cfg.openai_live_url, cfg.openai_api_key)
    return connect(
        realtime_url(cfg.openai_realtime_url, cfg.openai_realtime_model), cfg.openai_api_key
    )
