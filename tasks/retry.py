"""Which failures are worth another attempt, and how long to wait: one answer for every task.

Celery retries a task by raising ``task.retry``; every task here uses :func:`retry_later` so
the backoff and the log line are the same everywhere, and :func:`is_transient` so a Twilio
503 is retried whether it came from a create (``TwilioRestException``) or from a list page
(a plain ``TwilioException`` carrying the response).
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import openai
import redis
import requests
from celery.exceptions import SoftTimeLimitExceeded
from twilio.base.exceptions import TwilioException, TwilioRestException

from common.config import Config
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
