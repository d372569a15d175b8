"""What staff do from the console (every one a CSRF-checked POST): take a thread over,
release it, reply in it, and mark a callback done. Replies are sent by the worker (posted as
the bot from the bot's number, logged with the staff number)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import current_app, redirect, request, url_for

from common import takeover
from common.names import SMS_MAX_CHARS
from common.redis_util import get_redis
from common.task_names import STAFF_REPLY
from store import writes
from webhooks.staff.auth import current_staff, login_required
from webhooks.staff.blueprint import bp
from webhooks.staff.views import cfg, conversation_or_404, require_log

log = logging.getLogger(__name__)


def _back(sid: str, **flash: str) -> Any:
    return redirect(url_for("staff.conversation_page", conversation_sid=sid, **flash), code=303)


def _log_takeover(action: str, sid: str, staff: str) -> None:
    """The takeover history in the log (Redis holds the state the worker obeys)."""
    try:
        if action == "take":
            writes.open_takeover(sid, staff)
        else:
            writes.close_takeover(sid, staff)
    except Exception as exc:
        log.error(
            "takeover not written to the log: %s",
            type(exc).__name__,
            extra={"conversation_sid": sid, "outcome": "log_failed"},
        )


@bp.post("/conversations/<conversation_sid>/takeover")
@login_required
def take_over(conversation_sid: str) -> Any:
    require_log()
    sid, staff = conversation_or_404(conversation_sid), current_staff() or ""
    takeover.take(get_redis(), sid, staff, cfg().takeover_idle_minutes)
    _log_takeover("take", sid, staff)
    log.info(
        "conversation taken over by staff", extra={"conversation_sid": sid, "outcome": "taken"}
    )
    return _back(sid)


@bp.post("/conversations/<conversation_sid>/release")
@login_required
def release(conversation_sid: str) -> Any:
    require_log()
    sid, staff = conversation_or_404(conversation_sid), current_staff() or ""
    takeover.release(get_redis(), sid)
    _log_takeover("release", sid, staff)
    log.info(
        "conversation released to the assistant",
        extra={"conversation_sid": sid, "outcome": "released"},
    )
    return _back(sid)


@bp.post("/conversations/<conversation_sid>/reply")
@login_required
def reply(conversation_sid: str) -> Any:
    require_log()
    sid, staff = conversation_or_404(conversation_sid), current_staff() or ""
    body = request.form.get("body", "").strip()
    if not body or len(body) > SMS_MAX_CHARS:
        return _back(sid, error="length")
    r, idle = get_redis(), cfg().takeover_idle_minutes
    # Replying takes the thread: the assistant must not answer over a person.
    if not takeover.renew(r, sid, idle):
        takeover.take(r, sid, staff, idle)
        _log_takeover("take", sid, staff)
    reply_id = secrets.token_hex(12)
    current_app.extensions["celery"].send_task(
        STAFF_REPLY,
        args=[{"conversation_sid": sid, "body": body, "staff_number": staff, "reply_id": reply_id}],
    )
    log.info("staff reply queued", extra={"conversation_sid": sid, "outcome": "queued"})
    return _back(sid, sent="1")


@bp.post("/callbacks/<int:callback_id>/done")
@login_required
def callback_done(callback_id: int) -> Any:
    require_log()
    writes.mark_callback_done(callback_id, current_staff() or "")
    target = request.form.get("back", "")
    if not (target.startswith("/staff/") and "//" not in target):
        target = url_for("staff.home")
    return redirect(target, code=303)
