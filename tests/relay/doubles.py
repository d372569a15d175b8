"""A scriptable upstream for byte-exact relay tests (the Realtime simulator covers protocol).

``EchoUpstream`` is a real WebSocket server (websockets' sync server, one thread per
connection) that records every handshake and every text message exactly as received, and
echoes it back unchanged. A browser-side test drives it through the relay with two commands:

* ``{"type": "test.say", "raw": "<text>"}`` - send ``<text>`` exactly, instead of an echo;
* ``{"type": "test.close", "code": 1000}`` - close the upstream with that code.

``handshake_delay`` holds each handshake open for a while, so frames the browser sends during
it must be queued by the relay.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from websockets.sync.server import ServerConnection, serve

from tests.support import free_port


@dataclass
class Conn:
    path: str
    headers: dict[str, str]
    received: list[str] = field(default_factory=list)
    open: bool = True


class EchoUpstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.conns: list[Conn] = []
        self.handshake_delay = 0.0
        self._lock = threading.Lock()
        self._server = serve(
            self._handle,
            "127.0.0.1",
            self.port,
            process_request=self._process_request,
            max_size=None,
            compression=None,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def _process_request(self, connection: ServerConnection, request) -> None:
        if self.handshake_delay:
            time.sleep(self.handshake_delay)
        return None

    def _handle(self, ws: ServerConnection) -> None:
        conn = Conn(ws.request.path, {k.lower(): v for k, v in ws.request.headers.raw_items()})
        with self._lock:
            self.conns.append(conn)
        try:
            for message in ws:
                assert isinstance(message, str)
                conn.received.append(message)
                command = json.loads(message)
                if command.get("type") == "test.say":
                    ws.send(command["raw"])
                elif command.get("type") == "test.close":
                    ws.close(command["code"], "bye")
                    break
                else:
                    ws.send(message)
        except Exception:
            pass
        finally:
            conn.open = False

    def open_count(self) -> int:
        return sum(c.open for c in self.conns)

    def reset(self) -> None:
        self.handshake_delay = 0.0
        with self._lock:
            self.conns.clear()

    def stop(self) -> None:
        self._server.shutdown()
