"""Redis helpers: one client per process, key names in one place, and the two ways a process
keeps a piece of work to itself (:func:`claim` and :class:`TaskLock`)."""

from __future__ import annotations

import contextlib
import functools

import redis

from common.config import get_config

PREFIX = "gf:"


def key(*parts: str) -> str:
    """A namespaced key, e.g. ``key("dedupe", sid)`` → ``gf:dedupe:<sid>``."""
    return PREFIX + ":".join(parts)


@functools.cache
def get_redis() -> redis.Redis:
    """The process-wide client (a connection pool), with short timeouts so a dead Redis
    is noticed in about a second instead of hanging a webhook."""
    cfg = get_config()
    return redis.Redis.from_url(
        cfg.redis_url,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        health_check_interval=30,
    )


def claim(
    client: redis.Redis,
    name: str,
    value: str | bytes = "1",
    *,
    ex: int | None = None,
    px: int | None = None,
) -> bool:
    """True for the first caller to set ``name`` (``SET NX`` with a TTL of ``ex`` seconds or
    ``px`` milliseconds), False while it exists: a once-only marker (a dedupe key, a nonce, a
    call being dialled). ``client`` is any Redis client (the relay keeps its own)."""
    return bool(client.set(name, value, nx=True, ex=ex, px=px))


class TaskLock:
    """A Redis lock that a task tries once, without waiting, around work no two deliveries may
    do at the same time; it expires after ``seconds``, so a holder that died frees it.

    ``lock = TaskLock(name, seconds)``, then ``try: if not lock.take(): ...`` with
    ``lock.release()`` in the ``finally``."""

    def __init__(self, name: str, seconds: float) -> None:
        self._lock = get_redis().lock(name, timeout=seconds)  # no I/O until take()

    def take(self) -> bool:
        """Acquire the lock if it is free; False if another holder has it."""
        return bool(self._lock.acquire(blocking=False))

    def release(self) -> None:
        """Free the lock; one not taken, already expired, or with Redis gone is left to its
        TTL (never raises)."""
        with contextlib.suppress(Exception):
            self._lock.release()
