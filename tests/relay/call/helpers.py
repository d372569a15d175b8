"""What the call-core tests share: a bridge started on a stream, Media Streams and Realtime
messages, and readers of the bridge's outputs."""

from __future__ import annotations

import base64
import json

from relay.call.bridge import TwilioBridge
from relay.call.outputs import ToOpenAI, ToTwilio
from relay.call.settings import BridgeSettings

SID = "MZ" + "1" * 32
CALL_SID = "CA" + "2" * 32


def start_msg(**params: str) -> dict:
    return {
        "event": "start",
        "streamSid": SID,
        "start": {
            "streamSid": SID,
            "callSid": CALL_SID,
            "accountSid": "AC" + "3" * 32,
            "tracks": ["inbound"],
            "customParameters": params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }


def audio(ms: int) -> str:
    return base64.b64encode(b"\x7f" * (8 * ms)).decode()


def openai_msgs(outs) -> list[dict]:
    return [json.loads(o.text) for o in outs if isinstance(o, ToOpenAI)]


def twilio_msgs(outs) -> list[dict]:
    return [json.loads(o.text) for o in outs if isinstance(o, ToTwilio)]


def make(params: dict | None = None, **kw) -> tuple[TwilioBridge, list]:
    bridge = TwilioBridge(
        BridgeSettings(model="gpt-realtime-2.1", **kw), now=0.0, call_sid=CALL_SID
    )
    params = {"direction": "inbound"} if params is None else params
    early = bridge.on_twilio(start_msg(**params), 0.0)
    assert early == []  # nothing goes out before the upstream is open
    return bridge, bridge.on_upstream_open(0.0)


def speak(bridge: TwilioBridge, response: str, item: str, chunks: int, ms: int, t0: float):
    """The model streams ``chunks`` deltas of ``ms`` each, all at ``t0``."""
    outs = bridge.on_openai({"type": "response.created", "response": {"id": response}}, t0)
    for _ in range(chunks):
        outs += bridge.on_openai(
            {
                "type": "response.output_audio.delta",
                "response_id": response,
                "item_id": item,
                "delta": audio(ms),
            },
            t0,
        )
    return outs
