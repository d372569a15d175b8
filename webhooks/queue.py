"""Hand an event to Celery without ever losing it.

The webhook answers 2xx only once the event is durable: either in the Redis broker, or, when
Redis cannot be reached within a short publish retry, in a local spool directory (written with
fsync and an atomic rename). A drainer in every web process republishes spooled events once
Redis answers again. Twilio does not document retries for Conversations post-event webhooks,
so answering 5xx and hoping for a retry could lose the message. Once published, the inbox
(:mod:`common.inbox`) covers the broker's own gaps until the task has finished.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from common import inbox
from common.config import get_config
from common.task_names import HANDLE_EVENT

log = logging.getLogger(__name__)


#: A claimed spool file untouched this long belonged to a process that died mid-drain.
STALE_CLAIM_SECONDS = 60.0


def publish(celery_app: Celery, event: dict[str, Any], retry_seconds: float) -> None:
    """Record the event in the inbox (:mod:`common.inbox`), then send it to the broker,
    retrying connection errors for about ``retry_seconds``; raise if Redis stays unreachable."""
    inbox.record(event, get_config().inbox_redeliver_seconds)
    send(celery_app, event, retry_seconds)


def send(celery_app: Celery, event: dict[str, Any], retry_seconds: float = 0.5) -> None:
    steps = max(1, int(retry_seconds / 0.5))
    celery_app.send_task(
        HANDLE_EVENT,
        args=[event],
        retry=True,
        retry_policy={
            "max_retries": steps,
            "interval_start": 0.1,
            "interval_step": 0.4,
            "interval_max": 0.5,
        },
    )


class Spool:
    """A directory of events waiting for the broker, one JSON file each."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.dir = Path(directory)

    def put(self, event: dict[str, Any]) -> Path:
        # Spooled events hold customers' numbers and texts: owner-only, whatever the umask.
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}.json"
        tmp = self.dir / (name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(event).encode())
            fh.flush()
            os.fsync(fh.fileno())
        final = self.dir / name
        os.replace(tmp, final)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final

    def pending(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob("*.json"))

    def _release_stale_claims(self) -> None:
        now = time.time()
        for claimed in self.dir.glob("*.json.claimed-*"):
            try:
                if now - claimed.stat().st_mtime > STALE_CLAIM_SECONDS:
                    os.replace(claimed, claimed.with_name(claimed.name.split(".claimed-")[0]))
            except FileNotFoundError:
                continue

    def drain(self, celery_app: Celery, retry_seconds: float = 0.5) -> int:
        """Publish every spooled event in order; stop at the first broker failure.
        Safe with several processes draining the same directory: each file is claimed by an
        atomic rename first. Returns how many events were published."""
        if not self.dir.is_dir():
            return 0
        self._release_stale_claims()
        sent = 0
        for path in self.pending():
            claimed = path.with_name(f"{path.name}.claimed-{os.getpid()}")
            try:
                os.replace(path, claimed)
            except FileNotFoundError:
                continue  # another process took it
            try:
                event = json.loads(claimed.read_bytes())
            except (OSError, ValueError):
                log.error("unreadable spool file kept for inspection: %s", claimed.name)
                os.replace(claimed, claimed.with_suffix(".bad"))
                continue
            try:
                publish(celery_app, event, retry_seconds)
            except Exception as exc:  # broker still down: put it back, try later
                os.replace(claimed, path)
                log.info("spool drain paused, broker unreachable: %s", type(exc).__name__)
                break
            claimed.unlink(missing_ok=True)
            sent += 1
            log.info("spooled event published", extra=inbox.log_context(event, "drained"))
        return sent


def start_drainer(celery_app: Celery, spool: Spool, interval: float) -> threading.Thread:
    """Drain the spool and sweep the inbox forever, in a daemon thread (a greenlet under
    gevent)."""

    redeliver = get_config().inbox_redeliver_seconds

    def loop() -> None:
        while True:
            try:
                spool.drain(celery_app)
                inbox.sweep(lambda event: send(celery_app, event), redeliver)
            except (redis.RedisError, OperationalError):
                pass  # Redis is down: the spool keeps events until it is back
            except Exception:
                log.exception("spool drainer error")
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="spool-drainer", daemon=True)
    thread.start()
    return thread
