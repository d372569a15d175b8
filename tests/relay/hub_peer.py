"""What the hub-mode tests of both WebSocket sides share: a recorder of what ``start_hub``
delivers (``tests/relay/wire/test_server_socket.py`` for the Twilio side, ``test_upstream.py``
for the OpenAI side) and the ceiling a broken implementation may hang a test for."""

from __future__ import annotations

from typing import Protocol

import gevent
import gevent.event

CEILING = 15  # seconds a broken implementation may hang a test before it fails; not a measure


class HubSocket(Protocol):
    def start_hub(self, on_message, on_end) -> bool: ...


class HubRecorder:
    """Records ``on_message`` calls and counts ``on_end`` calls of one ``start_hub``."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, bytes]] = []
        self.ends = 0
        self.ended = gevent.event.Event()

    def on_message(self, opcode: int, payload: bytes) -> None:
        self.messages.append((opcode, payload))

    def on_end(self) -> None:
        self.ends += 1
        self.ended.set()

    def hub_socket(self) -> HubSocket:
        raise NotImplementedError

    def start(self) -> bool:
        return self.hub_socket().start_hub(self.on_message, self.on_end)

    def wait_for_messages(self, n: int) -> list[tuple[int, bytes]]:
        with gevent.Timeout(CEILING):
            while len(self.messages) < n:
                gevent.sleep(0.001)
        return self.messages
