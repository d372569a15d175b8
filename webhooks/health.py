"""Liveness and metrics for the web process."""

from __future__ import annotations

import redis
from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from common.redis_util import get_redis
from common.stats import RedisCollector

bp = Blueprint("health", __name__)
#: Series shared by every web and worker process (webhook outcomes, task runs), from Redis.
_shared = CollectorRegistry(auto_describe=True)
_shared.register(RedisCollector())


@bp.get("/healthz")
def healthz():
    try:
        get_redis().ping()
    except redis.RedisError as exc:
        return {"status": "degraded", "redis": f"unreachable: {type(exc).__name__}"}, 503
    return {"status": "ok", "redis": "ok"}


@bp.get("/metrics")
def metrics():
    body = generate_latest(REGISTRY) + generate_latest(_shared)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
