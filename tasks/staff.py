"""The console's work done by the worker: a staff member's reply in a thread (posted as the
bot from the bot's number, logged with the staff number) and the login code text."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from common.config import get_config
from common.redis_util import get_redis, key
from common.task_names import SEND_LOGIN_CODE, STAFF_REPLY
from common.twilio_client import get_twilio
from tasks import text_log, twilio_ops
from tasks.retry import locked_run

log = logging.getLogger(__name__)

LOGIN_CODE_TEXT = (
    "GateFrames staff console code: {code}. It works for 10 minutes. "
    "If you did not ask for it, ignore this text."
)


@shared_task(bind=True, name=STAFF_REPLY, acks_late=True, max_retries=None)
def staff_reply(self, reply: dict[str, Any]) -> str:
    """``reply``: ``conversation_sid``, ``body``, ``staff_number``, ``reply_id`` (unique per
    submitted reply: a redelivery posts nothing more)."""
    cfg = get_config()
    conversation_sid = str(reply.get("conversation_sid") or "")
    reply_key = f"staff:{reply.get('reply_id') or ''}"
    staff_number = str(reply.get("staff_number") or "")
    body = str(reply.get("body") or "")
    ctx = {
        "conversation_sid": conversation_sid,
        "task_id": self.request.id,
        "message_sid": reply_key,
    }

    def work() -> str:
        client = get_twilio()
        participants = twilio_ops.list_participants(client, conversation_sid)
        if twilio_ops.is_group(cfg, participants):
            twilio_ops.ensure_bot(client, cfg, conversation_sid, participants)
        sid = twilio_ops.post_once(client, cfg, conversation_sid, reply_key, body)
        text_log.record_post(
            client, conversation_sid, reply_key, body, sid,
            author=cfg.bot_identity, sender="staff", staff_number=staff_number,
        )  # fmt: skip
        return "sent" if sid else "already_sent"

    return locked_run(self, cfg, key("lock", reply_key), ctx, "staff reply", work)


@shared_task(bind=True, name=SEND_LOGIN_CODE, acks_late=True, max_retries=None)
def send_login_code(self, request: dict[str, Any]) -> str:
    """``request``: ``number``, ``code``, ``request_id`` (one text per request)."""
    cfg = get_config()
    number, request_id = str(request.get("number") or ""), str(request.get("request_id") or "")
    ctx = {"task_id": self.request.id, "request_id": request_id}
    marker = key("login_code_sms", request_id)

    def work() -> str:
        r = get_redis()
        if r.exists(marker):
            return "already_sent"
        get_twilio().messages.create(
            to=number,
            from_=cfg.bot_projected_address,
            body=LOGIN_CODE_TEXT.format(code=request.get("code")),
        )
        r.set(marker, "1", ex=3600)
        return "sent"

    return locked_run(self, cfg, key("lock", "login_code", request_id), ctx, "login code", work)
