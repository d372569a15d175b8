"""Redis helpers: one client per process, key names in one place."""

from __future__ import annotations

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
