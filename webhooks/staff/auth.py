"""Sign-in: a 6-digit code texted to a number on STAFF_NUMBERS, then a signed session cookie.

``POST /staff/login`` answers the same for any number, and texts a code (through the worker,
so the answer takes as long either way) only to staff. A code lives :data:`CODE_SECONDS` and
allows :data:`CODE_TRIES` tries; codes are kept hashed in Redis. Sessions are listed in Redis
too, so logout (and removal from STAFF_NUMBERS) ends them at once. Both steps count against
STAFF_LOGIN_IP_LIMIT per client IP; codes sent count against STAFF_LOGIN_LIMIT per number.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from flask import current_app, g, redirect, render_template, request, session, url_for
from limits import parse

from common.config import Config
from common.redis_util import get_redis, key
from common.task_names import SEND_LOGIN_CODE
from webhooks.extensions import limiter
from webhooks.staff.blueprint import SESSION_HOURS, bp

log = logging.getLogger(__name__)

CODE_SECONDS = 600
CODE_TRIES = 5
SENT_ANSWER = (
    "If this number belongs to GateFrames staff, a 6-digit code is on its way by text. "
    "It works for 10 minutes."
)


def _cfg() -> Config:
    return current_app.extensions["gateframes_config"]


def _digest(code: str) -> str:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, code.encode(), hashlib.sha256).hexdigest()


def normalize_number(raw: str) -> str | None:
    """E.164 for a number written any common way (US when no country code is given)."""
    try:
        parsed = phonenumbers.parse(raw.strip()[:40], "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _limited(limit: str, scope: str, ident: str) -> bool:
    """True when ``ident`` is over ``limit`` (Redis, shared by every web process). If the
    limit store does not answer the attempt goes on: the code itself still guards."""
    try:
        return not limiter.limiter.hit(parse(limit), scope, ident)
    except Exception as exc:
        log.warning("login limit unavailable: %s", type(exc).__name__)
        return False


def _ip_refused() -> tuple[str, int] | None:
    if _limited(_cfg().staff_login_ip_limit, "staff-login-ip", request.remote_addr or "?"):
        log.warning(
            "console login refused: too many attempts from this IP",
            extra={"reason": "ip_limit", "client_ip": request.remote_addr},
        )
        page = render_template(
            "staff/login.html",
            step="number",
            error="Too many sign-in attempts from your network. Try again later.",
        )
        return page, 429
    return None


# -- sessions ---------------------------------------------------------------------------------
def _session_key(token: str) -> str:
    return key("staff_session", token)


def current_staff() -> str | None:
    """The signed-in staff number, or None (no session, logged out, or no longer staff)."""
    if "staff_number" in g:
        return g.staff_number
    number, token = session.get("staff"), session.get("token")
    found = None
    if isinstance(number, str) and isinstance(token, str) and number in _cfg().staff_numbers:
        try:
            if get_redis().get(_session_key(token)) == number:
                found = number
        except Exception as exc:
            log.warning("console session store unavailable: %s", type(exc).__name__)
    g.staff_number = found
    return found


def _safe_next(target: str | None) -> str:
    """Only a path inside the console (never another site)."""
    if target and target.startswith("/staff") and not urlsplit(target).netloc:
        return target
    return url_for("staff.home")


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pages: 302 to the login page."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_staff() is None:
            return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def api_login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """JSON routes: 401."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_staff() is None:
            return {"error": "login required"}, 401
        return view(*args, **kwargs)

    return wrapper


# -- the routes ---------------------------------------------------------------------------------
@bp.get("/login")
def login() -> Any:
    if current_staff() is not None:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("staff/login.html", step="number", next=request.args.get("next", ""))


@bp.post("/login")
def login_number() -> Any:
    if refused := _ip_refused():
        return refused
    cfg = _cfg()
    number = normalize_number(request.form.get("number", ""))
    nxt = request.form.get("next", "")
    if number is None:
        page = render_template(
            "staff/login.html", step="number", next=nxt,
            error="Enter a phone number, e.g. +1 415 555 0100.",
        )  # fmt: skip
        return page, 400
    if number in cfg.staff_numbers:
        if _limited(cfg.staff_login_limit, "staff-login-number", number):
            log.warning(
                "console login code not sent: per-number limit", extra={"reason": "number_limit"}
            )
        else:
            _send_code(number)
    else:
        log.info(
            "console login asked for a number not on STAFF_NUMBERS", extra={"outcome": "not_staff"}
        )
    return render_template(
        "staff/login.html", step="code", number=number, next=nxt, note=SENT_ANSWER
    )


def _send_code(number: str) -> None:
    code = f"{secrets.randbelow(1_000_000):06d}"
    r = get_redis()
    name = key("staff_code", number)
    pipe = r.pipeline()
    pipe.delete(name)
    pipe.hset(name, mapping={"digest": _digest(code), "tries": 0})
    pipe.expire(name, CODE_SECONDS)
    pipe.execute()
    request_id = secrets.token_hex(8)
    current_app.extensions["celery"].send_task(
        SEND_LOGIN_CODE, args=[{"number": number, "code": code, "request_id": request_id}]
    )
    log.info(
        "console login code queued", extra={"outcome": "code_queued", "request_id": request_id}
    )


@bp.post("/login/code")
def login_code() -> Any:
    if refused := _ip_refused():
        return refused
    number = normalize_number(request.form.get("number", "")) or ""
    code = request.form.get("code", "").strip()
    nxt = request.form.get("next", "")
    outcome = _check_code(number, code)
    if outcome != "ok":
        log.warning(
            "console login code refused",
            extra={"reason": outcome, "client_ip": request.remote_addr},
        )
        message = {
            "too_many": "Too many wrong codes. Ask for a new code.",
            "wrong": "That code is wrong or has expired.",
        }[outcome]
        page = render_template(
            "staff/login.html", step="code", number=number, next=nxt, error=message
        )
        return page, 429 if outcome == "too_many" else 400
    token = secrets.token_urlsafe(24)
    get_redis().set(_session_key(token), number, ex=SESSION_HOURS * 3600)
    session.clear()  # a fresh session: nothing from before the sign-in carries over
    session.permanent = True
    session.update(staff=number, token=token)
    log.info("console sign-in", extra={"outcome": "signed_in"})
    return redirect(_safe_next(nxt), code=303)


def _check_code(number: str, code: str) -> str:
    """``ok``, ``wrong`` (also: no code, expired) or ``too_many`` (the code is then gone)."""
    if not number:
        return "wrong"
    r = get_redis()
    name = key("staff_code", number)
    tries = r.hincrby(name, "tries", 1)  # counted before comparing: no free guesses
    digest = r.hget(name, "digest")
    if not digest:
        r.delete(name)  # hincrby made an empty entry for an unknown number
        return "wrong"
    if tries > CODE_TRIES:
        r.delete(name)
        return "too_many"
    if not (code.isdigit() and len(code) == 6 and hmac.compare_digest(digest, _digest(code))):
        return "wrong"
    r.delete(name)
    return "ok"


@bp.post("/logout")
def logout() -> Any:
    token = session.get("token")
    if isinstance(token, str):
        get_redis().delete(_session_key(token))
    session.clear()
    return redirect(url_for("staff.login"), code=303)


@bp.context_processor
def _who() -> dict[str, object]:
    return {"me": current_staff()}
