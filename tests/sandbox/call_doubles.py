"""Stand-ins for the gateway's voice side, for tests of calls the Twilio simulator runs: a web
process that answers TwiML per path (and keeps each signed request) and a relay that accepts
Media Streams WebSockets (and keeps every message)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from tests.form_server import Answer, FormServer, Post
from tests.support import wait_for


@dataclass
class Fetched:
    path: str
    form: dict[str, str]
    signed: bool


@dataclass
class TwimlApp:
    """Answers ``docs[path]`` as TwiML (404 for other paths)."""

    auth_token: str
    docs: dict[str, str] = field(default_factory=dict)
    requests: list[Fetched] = field(default_factory=list)

    def start(self) -> TwimlApp:
        self.server = FormServer(self._answer)
        self.url = self.server.url
        return self

    def _answer(self, post: Post) -> Answer:
        ok = RequestValidator(self.auth_token).validate(post.url, post.form, post.signature)
        self.requests.append(Fetched(post.path, post.form, ok))
        doc = self.docs.get(post.path)
        return (200 if doc is not None else 404), "text/xml", (doc or "not found").encode()

    def stop(self) -> None:
        self.server.stop()

    def fetched(self, path: str) -> list[Fetched]:
        return [r for r in self.requests if r.path == path]


@dataclass
class Stream:
    path: str
    headers: dict[str, str]
    conn: ServerConnection
    messages: list[dict[str, Any]] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)

    def kinds(self) -> list[str]:
        return [m.get("event", "?") for m in self.messages]

    def start(self) -> dict[str, Any]:
        return wait_for(lambda: next((m for m in self.messages if m["event"] == "start"), None))


class FakeRelay:
    """A Media Streams server: keeps every connection and what arrived on it."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []

    def start(self) -> FakeRelay:
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    def _handle(self, conn: ServerConnection) -> None:
        request = conn.request
        assert request is not None
        stream = Stream(request.path, dict(request.headers.raw_items()), conn)
        self.streams.append(stream)
        try:
            for raw in conn:
                stream.messages.append(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            stream.closed.set()

    def wait_streams(self, count: int, timeout: float = 10.0) -> list[Stream]:
        return wait_for(lambda: self.streams if len(self.streams) >= count else None, timeout)
