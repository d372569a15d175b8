"""Shared HTTP plumbing for the simulators: a threaded server and injectable faults.

``serve`` runs a WSGI app on a loopback port until SIGTERM or SIGINT. The simulators are hit
concurrently by the web process and the Celery worker, and a fault may stall one request for
seconds, so every request gets its own (daemon) thread. The server loop runs in a helper
thread; the main thread only waits for a signal and then shuts down cleanly, because
``shutdown()`` called from inside the serving thread would deadlock.

``FaultBook`` holds "make the next N matching requests fail or stall" orders that tests and
operators post to ``/_sandbox/faults``; both simulators consult it before doing real work.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    """One short access-log line per request (werkzeug's default also colours and pads)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logging.getLogger("sandbox.access").info("%s %s %s", self.command, self.path, code)


def serve(app: Callable[..., Any], host: str, port: int, name: str) -> None:
    """Block serving ``app`` on ``host:port``; return after SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    # Handlers first: the port opening is the readiness signal, and a SIGTERM right after it
    # must stop the server cleanly rather than kill it (exit -15).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    server.daemon_threads = True  # a stalled request must not hold up exit
    loop = threading.Thread(target=server.serve_forever, name=f"{name}-http", daemon=True)
    loop.start()
    print(f"{name} listening on http://{host}:{server.server_port}", flush=True)
    while not stop.wait(0.5):
        if not loop.is_alive():
            break
    server.shutdown()
    server.server_close()
    print(f"{name} stopped", flush=True)


@dataclass
class Fault:
    """The next ``count`` requests matching ``method``/``path_contains`` wait ``delay_seconds``
    and then fail with ``status`` (a status below 400 means: only the delay, then serve).
    ``after`` makes the request take effect before failing (the response is "lost")."""

    count: int = 1
    status: int | None = None
    method: str | None = None
    path_contains: str | None = None
    delay_seconds: float = 0.0
    code: int | None = None
    message: str | None = None
    after: bool = False

    @property
    def fails(self) -> bool:
        return self.status is not None and self.status >= 400

    def stall(self) -> None:
        if self.delay_seconds > 0:
            time.sleep(self.delay_seconds)


class FaultError(ValueError):
    """A fault order that cannot be followed (bad JSON fields)."""


class FaultBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, spec: dict[str, Any]) -> Fault:
        known = set(Fault.__dataclass_fields__)
        unknown = set(spec) - known
        if unknown:
            raise FaultError(f"unknown fault fields: {sorted(unknown)}; known: {sorted(known)}")
        try:
            fault = Fault(**{k: v for k, v in spec.items() if v is not None})
            fault.count = int(fault.count)
            fault.status = int(fault.status) if fault.status is not None else None
            fault.delay_seconds = float(fault.delay_seconds)
            fault.code = int(fault.code) if fault.code is not None else None
        except (TypeError, ValueError) as exc:
            raise FaultError(f"bad fault: {exc}") from exc
        if fault.count < 1 or fault.delay_seconds < 0:
            raise FaultError("count must be >= 1 and delay_seconds >= 0")
        if not fault.fails and fault.delay_seconds == 0:
            raise FaultError("a fault needs a status >= 400 or a delay_seconds > 0")
        if fault.method:
            fault.method = fault.method.upper()
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first fault matching this request."""
        with self._lock:
            for fault in self._faults:
                if fault.method and fault.method != method.upper():
                    continue
                if fault.path_contains and fault.path_contains not in path:
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
