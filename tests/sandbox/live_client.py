"""A GPT-Live simulator process and a raw WebSocket client for the simulator's own tests.

Every server event a test reads goes through :func:`checked`: it must parse as the SDK's
``openai.types.live.ServerEvent`` with no key the SDK does not declare, at any depth, and the
Responses event inside a ``response.event`` must parse as ``openai.types.responses``'s
``ResponseStreamEvent``: the simulator speaks the published protocol.
"""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args

import websocket
from openai.types.live import ServerEvent
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel, Field, TypeAdapter

from sandbox import services
from sandbox.phone import SILENCE, tone
from tests.support import base_env, free_port, start_service

KEY = "sk-sim-live-test"
SERVER_EVENT: TypeAdapter = TypeAdapter(
    Annotated[Union[get_args(get_args(ServerEvent)[0])], Field(discriminator="type")]  # noqa: UP007
)
RESPONSE_EVENT: TypeAdapter = TypeAdapter(
    Annotated[Union[get_args(get_args(ResponseStreamEvent)[0])], Field(discriminator="type")]  # noqa: UP007
)
END_CALL = {
    "type": "function",
    "name": "end_call",
    "description": "Hang up.",
    "parameters": {
        "type": "object",
        "properties": {"reason": {"type": "string"}},
        "required": ["reason"],
        "additionalProperties": False,
    },
    "strict": True,
}
TRANSFER = {**END_CALL, "name": "transfer_to_staff", "description": "Transfer the caller."}


def extras(value: Any, path: str = "") -> list[str]:
    """Dotted paths of keys no SDK model declares (pydantic keeps them in model_extra)."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        found += [f"{path}.{k}".lstrip(".") for k in value.model_extra or {}]
        for name in type(value).model_fields:
            found += extras(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, (list, tuple)):
        for i, element in enumerate(value):
            found += extras(element, f"{path}[{i}]")
    return found


def checked(event: dict[str, Any]) -> dict[str, Any]:
    parsed = SERVER_EVENT.validate_python(event)
    assert extras(parsed) == [], (event["type"], extras(parsed))
    if event["type"] == "response.event":
        inner = RESPONSE_EVENT.validate_python(event["event"])
        assert extras(inner) == [], (event["event"]["type"], extras(inner))
    return event


def session_config(**overrides: Any) -> dict[str, Any]:
    """A Twilio bridge's ``session.start`` config (fact sheet §3), with overrides."""
    config: dict[str, Any] = {
        "model": "gpt-live-1.1",
        "instructions": "You answer GateFrames' phone line. Be brief.",
        "audio": {"format": {"type": "audio/pcmu", "rate": 8000}, "output": {"voice": "marin"}},
        "delegation": {
            "type": "responses",
            "acknowledgement_delay_ms": 0,
            "responses": {
                "model": "gpt-5",
                "instructions": "Business rules.",
                "tools": [END_CALL, TRANSFER],
                "tool_choice": "auto",
                "parallel_tool_calls": False,
            },
        },
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "Inbound call from +15550001111"}],
            }
        ],
        "store": False,
    }
    config.update(overrides)
    return config


@contextlib.contextmanager
def running_sim(log_dir: Path) -> Iterator[str]:
    """A simulator streaming 20x real time; yields its WebSocket URL."""
    port = free_port()
    proc = start_service(services.live_sim(port, KEY, speed=20), log_dir, base_env())
    try:
        yield f"ws://127.0.0.1:{port}/v1/live/sessions"
    finally:
        proc.stop()


def connect(url: str, *headers: str) -> websocket.WebSocket:
    return websocket.create_connection(
        url, header=[f"Authorization: Bearer {KEY}", *headers], timeout=10
    )


def send(ws: websocket.WebSocket, **event: Any) -> None:
    ws.send(json.dumps(event))


def recv(ws: websocket.WebSocket) -> dict[str, Any]:
    return checked(json.loads(ws.recv()))


def until(ws: websocket.WebSocket, kind: str, **match: Any) -> tuple[dict, list[dict]]:
    """Read until an event of ``kind`` (whose ``match`` keys equal these); (it, all read)."""
    seen = []
    while True:
        event = recv(ws)
        seen.append(event)
        if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
            return event, seen


def inner(ws: websocket.WebSocket, kind: str) -> tuple[dict, list[dict]]:
    """Read until a ``response.event`` carrying a Responses event of ``kind``."""
    seen = []
    while True:
        event, more = until(ws, "response.event")
        seen += more
        if event["event"]["type"] == kind:
            return event, seen


def start(ws: websocket.WebSocket, **overrides: Any) -> dict[str, Any]:
    send(ws, type="session.start", event_id="evt_start", session=session_config(**overrides))
    started = recv(ws)
    assert started["type"] == "session.started", started
    return started["session"]


def speak(ws: websocket.WebSocket, ms: int = 800, before_ms: int = 200) -> None:
    """The phone talks: silence, ``ms`` of tone, then 700 ms of silence (the VAD's stop),
    in 20 ms μ-law frames as Twilio sends them."""
    frames = [SILENCE] * (before_ms // 20) + [tone(20)] * (ms // 20) + [SILENCE] * 35
    for frame in frames:
        send(ws, type="session.input_audio.append", audio=base64.b64encode(frame).decode())


def control(sim: str, path: str, **query: Any) -> tuple[int, dict[str, Any]]:
    """GET a control path of the simulator at ``sim``: (status, JSON body)."""
    port = urllib.parse.urlsplit(sim).port
    qs = urllib.parse.urlencode(query)
    url = f"http://127.0.0.1:{port}{path}" + (f"?{qs}" if qs else "")
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def newest_session(sim: str) -> dict[str, Any]:
    return control(sim, "/_sandbox/sessions")[1]["sessions"][-1]


def text_of(events: list[dict[str, Any]], kind: str) -> str:
    return "".join(e["delta"] for e in events if e["type"] == kind)
