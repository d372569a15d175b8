"""The web process: Twilio webhooks (Flask); work is queued by name on the shared Celery app."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from common import models
from common.celery_app import celery_init_app
from common.config import Config, get_config
from common.logs import configure_logging

log = logging.getLogger(__name__)


def _warn_untrusted_router() -> Callable[[], None]:
    """Behind a router every request comes from the router's address, so per-IP limits would
    lump all callers together: say so once, naming the setting, at the first such request."""
    warned = False

    def check() -> None:
        nonlocal warned
        if not warned and request.headers.get("X-Forwarded-For"):
            warned = True
            log.warning(
                "requests carry X-Forwarded-For but TRUSTED_PROXY_COUNT=0: per-IP limits see "
                "the router's address; set TRUSTED_PROXY_COUNT to the number of proxy hops"
            )

    return check


def create_app(cfg: Config | None = None, *, start_drainer: bool = False) -> Flask:
    """Build the web app. ``start_drainer`` runs the spool drainer (web processes only)."""
    cfg = cfg or get_config()
    configure_logging(cfg, "web")
    models.warn_at_start(cfg, log)
    app = Flask("gateframes")
    app.extensions["gateframes_config"] = cfg
    if cfg.trusted_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=cfg.trusted_proxy_count)  # type: ignore[method-assign]
    else:
        app.before_request(_warn_untrusted_router())
    app.config.update(
        RATELIMIT_STORAGE_URI=cfg.redis_url,
        # Short timeouts: a dead Redis must not stall a webhook past Twilio's 5 s budget.
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        RATELIMIT_DEFAULT=cfg.http_rate_limit,
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_KEY_PREFIX="gf-limit",
    )

    from webhooks import convo, demo, health, transfer, voice
    from webhooks.extensions import limiter

    limiter.init_app(app)
    app.register_blueprint(convo.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(voice.bp)
    app.register_blueprint(transfer.bp)
    app.register_blueprint(demo.bp)  # answers 404 unless APP_ENV=development
    # Twilio's webhooks are limited per conversation, not per IP: Twilio's IPs are shared.
    limiter.exempt(convo.bp)
    limiter.exempt(voice.bp)
    limiter.exempt(transfer.bp)
    limiter.exempt(health.bp)
    from webhooks.staff import bp as staff_bp
    from webhooks.staff import init_console

    init_console(app, cfg)
    # The console limits its sign-in itself (per number, per IP); signed-in pages poll.
    limiter.exempt(staff_bp)

    celery_app = celery_init_app()
    app.extensions["celery"] = celery_app
    if start_drainer:
        import threading

        from store import db

        # A web process says at start (once, in the log) when the console's log is unusable;
        # off the boot path, so a slow database never delays Twilio's webhooks.
        threading.Thread(target=db.ready, name="log-check", daemon=True).start()
        from webhooks.queue import Spool
        from webhooks.queue import start_drainer as run_drainer

        run_drainer(celery_app, Spool(cfg.spool_dir), cfg.spool_drain_interval_seconds)
    return app
