"""The call log's tasks: store a finished call's record (queued by the relay at every call
end), store the after-call summary on it, and the daily retention purge.

The purge needs no beat process and no queue: each worker's main process runs a small thread
that, every :data:`PURGE_CHECK_SECONDS` (and at start), takes the day's Redis marker
(``SET NX``) and purges when it got it, so with any number of workers the log is purged once a
day, and a day missed while every worker was down is caught up at the next start.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from sqlalchemy.exc import SQLAlchemyError

from common.config import get_config
from common.redis_util import get_redis, key
from common.task_names import STORE_CALL
from store import db, retention, writes

log = logging.getLogger(__name__)

PURGE_CHECK_SECONDS = 600.0
#: Retries of a record while the database is away: 2, 4 … 60 s apart, about half an hour.
STORE_RETRIES = 35
#: The day's marker outlives the day, so a restart the same day does not purge again.
PURGE_MARKER_SECONDS = 2 * 86_400


@shared_task(bind=True, name=STORE_CALL, acks_late=True, max_retries=None)
def store_call(self, record: dict[str, Any]) -> str:
    """Store the record once; a redelivery finds the call and changes nothing. A database
    that is unreachable or unmigrated is retried for about half an hour (the record waits in
    the queue); a record that cannot be read is refused with a log line."""
    cfg = get_config()
    call_sid = str(record.get("call_sid") or "") if isinstance(record, dict) else ""
    ctx = {"call_sid": call_sid, "task_id": self.request.id, "attempt": self.request.retries}
    if not call_sid:
        log.warning(
            "call record without a call_sid; not stored", extra={**ctx, "outcome": "rejected"}
        )
        return "rejected"
    try:
        if not db.ready():
            raise SQLAlchemyError("the log is unavailable")
        _, new = writes.store_call(record, cfg.bot_projected_address)
    except SQLAlchemyError as exc:
        if self.request.retries < STORE_RETRIES:
            log.warning("call record not stored yet, retrying: %s", type(exc).__name__, extra=ctx)
            raise self.retry(countdown=min(60.0, 2.0 * 2**self.request.retries)) from exc
        log.error("call record lost: %s", type(exc).__name__, extra={**ctx, "outcome": "failed"})
        return "failed"
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        log.error(
            "call record unreadable; not stored: %s",
            f"{type(exc).__name__}: {exc}"[:200],
            extra={**ctx, "outcome": "rejected"},
        )
        return "rejected"
    outcome = "stored" if new else "duplicate"
    log.info("call record %s", outcome, extra={**ctx, "outcome": outcome})
    return outcome


def store_summary(call_sid: str, text: str) -> None:
    """The summary on the call's row; best effort (the summary is texted either way)."""
    if not db.ready():
        return
    try:
        writes.store_summary(call_sid, text)
    except Exception as exc:
        log.error(
            "call summary not stored in the log: %s",
            type(exc).__name__,
            extra={"call_sid": call_sid, "outcome": "log_failed"},
        )


def purge_log() -> str:
    """Delete what is older than LOG_RETENTION_DAYS (a transaction: all or nothing)."""
    cfg = get_config()
    removed = retention.purge(cfg.log_retention_days)
    log.info(
        "log purged: %s older than %d days",
        removed,
        cfg.log_retention_days,
        extra={"outcome": "purged", "calls": removed.calls, "texts": removed.texts},
    )
    return "purged"


def purge_due(today: dt.date | None = None) -> bool:
    """True for the one worker that takes today's marker."""
    day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    return bool(get_redis().set(key("log_purge", day), "1", nx=True, ex=PURGE_MARKER_SECONDS))


_stop = threading.Event()


def _purge_loop() -> None:
    while not _stop.is_set():
        try:
            if db.ready() and purge_due():
                purge_log()
        except Exception as exc:  # Redis or the database away: a later day catches up
            log.warning("daily log purge failed: %s", type(exc).__name__)
        _stop.wait(PURGE_CHECK_SECONDS)


@worker_ready.connect
def _start_purge_loop(**_: object) -> None:
    _stop.clear()  # the loop's first db.ready() says at start when the log cannot be used
    threading.Thread(target=_purge_loop, name="log-purge", daemon=True).start()


@worker_shutdown.connect
def _stop_purge_loop(**_: object) -> None:
    _stop.set()
