"""Liveness and metrics for the web process."""

from __future__ import annotations

import redis
from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.redis_util import get_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        get_redis().ping()
    except redis.RedisError as exc:
        return {"status": "degraded", "redis": f"unreachable: {type(exc).__name__}"}, 503
    return {"status": "ok", "redis": "ok"}


@bp.get("/metrics")
def metrics():
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
