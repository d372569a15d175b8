"""The console's blueprint and what every one of its responses gets: the CSRF check on
POSTs, a strict Content-Security-Policy and no caching."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect

log = logging.getLogger(__name__)

bp = Blueprint(
    "staff", __name__, url_prefix="/staff", template_folder="templates", static_folder="static"
)
csrf = CSRFProtect()
SESSION_HOURS = 8
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@bp.before_request
def _check_csrf() -> None:
    if request.method == "POST":
        csrf.protect()


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError) -> tuple[str, int]:
    log.warning(
        "console POST refused: %s",
        exc.description,
        extra={"reason": "csrf", "path": request.path, "client_ip": request.remote_addr},
    )
    page = render_template("staff/error.html", title="Request refused", message=(
        "This form has expired or did not come from the console. Go back, reload the page "
        "and try again."
    ))  # fmt: skip
    return page, 400
