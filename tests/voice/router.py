"""A tiny TCP router in front of several relays, as a PaaS router is: every new connection goes
to the current ``target`` port; connections already open stay where they are. A test moves the
target when it sends a relay SIGTERM (a real router stops sending to a dyno that is stopping,
or to one whose /healthz answers 503)."""

from __future__ import annotations

import contextlib
import socket
import threading


class Router:
    def __init__(self, target: int):
        self.target = target
        self.routed: list[int] = []  # the target port of each connection, in order
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._stopped = threading.Event()

    def start(self) -> Router:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            target = self.target
            self.routed.append(target)
            try:
                upstream = socket.create_connection(("127.0.0.1", target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)  # pass the end on; the other direction may still talk
