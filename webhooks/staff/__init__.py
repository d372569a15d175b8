"""The staff console (``/staff``): who called and texted, what the assistant said, callbacks
to make, and taking a text thread over. Server-rendered Jinja pages with a little vanilla JS,
JSON under ``/staff/api``, sign-in by a code texted to a number on STAFF_NUMBERS.

Every response carries a strict Content-Security-Policy (scripts and styles from this origin
only; no inline script anywhere), every POST a CSRF token, and every page is escaped by Jinja.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import Flask

from common.config import Config
from webhooks.staff import actions, api, auth, pages
from webhooks.staff.blueprint import SESSION_HOURS, bp, csrf

__all__ = ["actions", "api", "auth", "bp", "init_console", "pages"]


def _secret_key(cfg: Config) -> str:
    """CONSOLE_SECRET_KEY; in development without one, a key derived from the machine's
    ENCRYPTION_KEY (or a random one: sessions then end when the process does)."""
    if cfg.console_secret_key:
        return cfg.console_secret_key
    if cfg.is_development and cfg.encryption_key:
        return hashlib.sha256(b"gateframes-console:" + cfg.encryption_key).hexdigest()
    return secrets.token_hex(32)


def init_console(app: Flask, cfg: Config) -> None:
    """Session, CSRF and the console's routes on the web app."""
    app.config.update(
        SECRET_KEY=_secret_key(cfg),
        SESSION_COOKIE_NAME="gf_staff",
        SESSION_COOKIE_SECURE=not cfg.is_development,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/staff",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=SESSION_HOURS),
        # Only the console's POSTs carry tokens; Twilio's webhooks are signed instead.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=SESSION_HOURS * 3600,
        WTF_CSRF_SSL_STRICT=not cfg.is_development,
    )
    csrf.init_app(app)
    app.register_blueprint(bp)  # with the routes of actions, api, auth and pages
