"""Flask extensions created once and bound in the app factory."""

from __future__ import annotations

from flask import request
from flask_limiter import Limiter


def client_ip() -> str:
    """The caller's IP. ProxyFix (enabled by TRUSTED_PROXY_COUNT) has already applied any
    X-Forwarded-For from trusted hops, so remote_addr is the right value either way."""
    return request.remote_addr or "unknown"


#: Per-IP HTTP limits in Redis, shared by every web process (configured in create_app).
limiter = Limiter(key_func=client_ip)
