"""Which failures are worth another attempt, and how long to wait: one answer for every task.

Celery retries a task by raising ``task.retry``; every task here uses :func:`retry_later` so
the backoff and the log line are the same everywhere, and :func:`is_transient` so a Twilio
503 is retried whether it came from a create (``TwilioRestException``) or from a list page
(a plain ``TwilioException`` carrying the response).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NoReturn

import openai
import redis
import requests
from celery.exceptions import Retry, SoftTimeLimitExceeded
from twilio.base.exceptions import TwilioException, TwilioRestException

from common.config import Config
from common.redis_util import TaskLock
from tasks.chat import EmptyReply

log = logging.getLogger(__name__)

#: Failures worth another attempt. OpenAI 4xx (bad model, bad key) are not: retrying cannot fix
#: them, so the customer gets the maintenance reply at once and the log says why.
TRANSIENT = (
    openai.APIConnectionError,  # includes timeouts
    openai.RateLimitError,
    openai.InternalServerError,
    EmptyReply,
    requests.RequestException,
    SoftTimeLimitExceeded,
    ConnectionError,
    TimeoutError,
    redis.RedisError,  # Redis restarting: the lock and reply markers need it back
)


def twilio_status(exc: BaseException) -> int | None:
    """The HTTP status of a Twilio failure. A failed *list* page raises a plain
    ``TwilioException("Unable to fetch page", response)``, not a TwilioRestException."""
    if isinstance(exc, TwilioRestException):
        return exc.status
    if isinstance(exc, TwilioException) and len(exc.args) > 1:
        return getattr(exc.args[1], "status_code", None)
    return None


def is_transient(exc: BaseException) -> bool:
    if (status := twilio_status(exc)) is not None:
        return status == 429 or status >= 500
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, TRANSIENT)


def backoff(cfg: Config, retries: int) -> float:
    """Seconds before attempt ``retries + 1``: doubling from TASK_RETRY_BACKOFF_SECONDS."""
    return cfg.task_retry_backoff_seconds * (2**retries)


def retry_later(task: Any, cfg: Config, exc: Exception, ctx: dict[str, Any], what: str) -> NoReturn:
    """Log ``what`` failed and schedule the task again with exponential backoff."""
    countdown = backoff(cfg, task.request.retries)
    log.warning(
        "%s, retrying in %.1fs: %s",
        what,
        countdown,
        type(exc).__name__,
        extra={**ctx, "outcome": "retry"},
    )
    raise task.retry(exc=exc, countdown=countdown) from exc


def locked_run(
    task: Any, cfg: Config, lock_name: str, ctx: dict[str, Any], what: str, work: Callable[[], str]
) -> str:
    """Run ``work`` under a Redis lock named ``lock_name``, the way every notice task does.

    Another delivery holding the lock → look again in a second (it may have died: the lock
    expires after TASK_LOCK_SECONDS). A transient failure → :func:`retry_later`. Redis down →
    raise, so the message stays unacknowledged and comes back with Redis. Any other failure
    → the final-failure path: one error line naming ``what``, outcome ``failed``."""
    lock = TaskLock(lock_name, cfg.task_lock_seconds)
    try:
        if not lock.take():
            raise task.retry(countdown=1.0, max_retries=cfg.task_lock_seconds)
        outcome = work()
    except Retry:
        raise
    except Exception as exc:
        if is_transient(exc) and task.request.retries < cfg.task_max_retries:
            retry_later(task, cfg, exc, ctx, f"{what} failed")
        if isinstance(exc, redis.RedisError):
            raise
        log.error(
            "%s not sent: %s",
            what,
            f"{type(exc).__name__}: {exc}"[:300],
            extra={**ctx, "outcome": "failed"},
        )
        return "failed"
    finally:
        lock.release()
    log.info("%s handled", what, extra={**ctx, "outcome": outcome})
    return outcome
