"""What the GPT-Live bridge tests share: a bridge started on a stream with its session
started, Live server events, and readers of the bridge's outputs."""

from __future__ import annotations

import base64
import json
from typing import Any

from relay.call.live.bridge import LiveBridge
from relay.call.live.settings import LiveSettings
from relay.call.outputs import ToOpenAI, ToTwilio
from relay.call.tools import ToolSettings
from sandbox.phone import tone
from tests.relay.call.helpers import CALL_SID, SID, start_msg

__all__ = ["CALL_SID", "SID", "start_msg"]

CALLER = "+14155550100"


def live_settings(**kw: Any) -> LiveSettings:
    return LiveSettings(model="gpt-live-1.1", voice="marin", delegation_model="gpt-5.5", **kw)


def with_tools(**kw: Any) -> LiveSettings:
    return live_settings(tools=ToolSettings("", None, "+14082605145"), **kw)


def openai_msgs(outs: list) -> list[dict]:
    return [json.loads(o.text) for o in outs if isinstance(o, ToOpenAI)]


def twilio_msgs(outs: list) -> list[dict]:
    return [json.loads(o.text) for o in outs if isinstance(o, ToTwilio)]


def audio(ms: int) -> str:
    return base64.b64encode(b"\x7f" * (8 * ms)).decode()


def media(ms: int = 20) -> dict:
    return {"event": "media", "streamSid": SID, "media": {"payload": audio(ms)}}


def started(bridge: LiveBridge, t: float = 0.0) -> list:
    return bridge.on_openai({"type": "session.started", "session": {"id": "sess_1"}}, t)


def make(
    params: dict | None = None, settings: LiveSettings | None = None
) -> tuple[LiveBridge, list, list]:
    """A call started, its upstream open (``session.start`` out) and the session started
    (the greeting out): ``(bridge, opened, started)``."""
    bridge = LiveBridge(settings or live_settings(), now=0.0, call_sid=CALL_SID)
    params = {"direction": "inbound", "from": CALLER} if params is None else params
    assert bridge.on_twilio(start_msg(**params), 0.0) == []
    opened = bridge.on_upstream_open(0.0)
    return bridge, opened, started(bridge)


def say(bridge: LiveBridge, ms: int, t: float, chunk_ms: int = 100) -> list:
    """The model speaks ``ms`` of audio at ``t`` in deltas of ``chunk_ms``."""
    outs: list = []
    for _ in range(ms // chunk_ms):
        delta = {"type": "session.output_audio.delta", "delta": audio(chunk_ms)}
        outs += bridge.on_openai(delta, t)
    return outs


def transcript(bridge: LiveBridge, side: str, text: str, t: float) -> list:
    kind = (
        "session.input_transcript.delta" if side == "caller" else "session.output_transcript.delta"
    )
    return bridge.on_openai({"type": kind, "delta": text, "start_ms": 0, "end_ms": 100}, t)


def echo_marks(bridge: LiveBridge, outs: list, t: float) -> list:
    """Twilio plays everything sent and echoes each mark at ``t``."""
    back: list = []
    for msg in twilio_msgs(outs):
        if msg["event"] == "mark":
            back += bridge.on_twilio({"event": "mark", "streamSid": SID, "mark": msg["mark"]}, t)
    return back


def function_call(call_id: str, name: str, arguments: str) -> dict:
    item = {
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "id": "fc_" + call_id,
    }
    return {
        "type": "response.event",
        "event_id": "evt_" + call_id,
        "delegation_id": "del_1",
        "event": {"type": "response.output_item.done", "output_index": 0, "item": item},
    }


def speech_frame() -> str:
    """20 ms of a loud tone, as a caller's voice reaches the line (base64 μ-law)."""
    return base64.b64encode(tone(20, amplitude=8000)).decode()
