"""A Realtime simulator process and a raw WebSocket client for the simulator's own tests."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Union, get_args

import websocket
from openai.types.realtime import RealtimeServerEvent
from pydantic import Field, TypeAdapter

from sandbox import services
from tests.support import base_env, free_port, start_service

KEY = "sk-sim-test"
#: Every GA server event, as the SDK types them: what the simulator sends must parse.
SERVER_EVENT: TypeAdapter = TypeAdapter(
    Annotated[Union[get_args(get_args(RealtimeServerEvent)[0])], Field(discriminator="type")]  # noqa: UP007
)


@contextlib.contextmanager
def running_sim(log_dir: Path) -> Iterator[str]:
    """A simulator streaming 20x real time; yields its Realtime URL."""
    port = free_port()
    proc = start_service(services.realtime_sim(port, KEY, speed=20), log_dir, base_env())
    try:
        yield f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime-2.1"
    finally:
        proc.stop()


def connect(url: str, **headers: str) -> websocket.WebSocket:
    head = [f"Authorization: Bearer {KEY}", *(f"{k}: {v}" for k, v in headers.items())]
    ws = websocket.create_connection(url, header=head, timeout=10)
    assert json.loads(ws.recv())["type"] == "session.created"
    return ws


def until(ws: websocket.WebSocket, kind: str) -> tuple[dict, list[dict]]:
    seen = []
    while True:
        event = json.loads(ws.recv())
        seen.append(event)
        if event["type"] == kind:
            return event, seen


def send(ws: websocket.WebSocket, **event) -> None:
    ws.send(json.dumps(event))


def control(sim: str, path: str) -> dict:
    """GET a control path (``/_sandbox/...``) of the simulator at ``sim``."""
    port = sim.split(":")[2].split("/")[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return json.loads(resp.read())
