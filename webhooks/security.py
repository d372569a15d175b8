"""Twilio webhook signatures.

Twilio signs the exact public URL it requested plus the form parameters. Behind a PaaS router
Flask sees an internal scheme and host, so the URL is rebuilt from ``PUBLIC_BASE_URL`` rather
than ``request.url`` (twilio-python#751).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import current_app, request
from twilio.request_validator import RequestValidator

from common import stats
from common.config import Config
from common.names import WEBHOOK_EVENTS, webhook_route

log = logging.getLogger(__name__)


def public_url(cfg: Config) -> str:
    """The URL Twilio used for this request: public origin + path + query string."""
    url = cfg.public_base_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return url


def signature_ok(cfg: Config) -> bool:
    if not cfg.twilio_validate_signatures:
        return True
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not cfg.twilio_auth_token or not cfg.public_base_url:
        return False
    params = request.form if request.method == "POST" else {}
    return RequestValidator(cfg.twilio_auth_token).validate(public_url(cfg), params, signature)


def twilio_signed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse (403) any request without a valid X-Twilio-Signature, before any work."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cfg: Config = current_app.extensions["gateframes_config"]
        if not signature_ok(cfg):
            log.warning(
                "refused webhook with missing or invalid X-Twilio-Signature",
                extra={
                    "reason": "bad_signature",
                    "client_ip": request.remote_addr,
                    "conversation_sid": request.form.get("ConversationSid"),
                    "call_sid": request.form.get("CallSid"),
                },
            )
            route = webhook_route(request.endpoint, request.blueprint)
            stats.incr(WEBHOOK_EVENTS, route, "forbidden")
            return "invalid Twilio signature\n", 403, {"Content-Type": "text/plain"}
        return view(*args, **kwargs)

    return wrapper
