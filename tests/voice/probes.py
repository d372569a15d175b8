"""What the callers in the failover tests and ``bench/failover.py`` heard: silences in a phone's
heard log, a simulator call's streams polled over time, a relay's draining /healthz."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request

from sandbox import dial


def longest_silence(heard_log: list[tuple[float, int]], since: float) -> float:
    """The longest stretch without new audio that reaches past ``since`` (seconds)."""
    times = [t for t, _ in heard_log]
    return max((b - a for a, b in itertools.pairwise(times) if b >= since), default=0.0)


def draining_health(port: int) -> dict | None:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except urllib.error.HTTPError as exc:
        if exc.code == 503:
            return json.loads(exc.read())
    except OSError:
        pass
    return None


class Listener:
    """Polls the simulator's call log: when each stream's heard audio last grew."""

    def __init__(self, call: dial.SimCall):
        self.call = call
        self.samples: list[tuple[float, list[int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            streams = self.call.log()["streams"]
            self.samples.append((time.monotonic(), [s["heard_ms"] for s in streams]))
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def gap(self) -> float:
        """From the last growth of the first stream's audio to the first of the second's."""
        final = max(h[0] for _, h in self.samples if h)
        last_old = min(t for t, h in self.samples if h and h[0] == final)
        first_new = min(t for t, h in self.samples if len(h) > 1 and h[1] > 0)
        return first_new - last_old
