"""Liveness and metrics for the web process."""

from __future__ import annotations

import hmac

import redis
from flask import Blueprint, Response, current_app, request
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
    token = current_app.extensions["gateframes_config"].metrics_token
    if token and not bearer_ok(request.headers.get("Authorization"), token):
        return Response(
            "metrics need Authorization: Bearer <METRICS_TOKEN>\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = generate_latest(REGISTRY) + generate_latest(_shared)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def bearer_ok(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
