"""The voicemail notice: an SMS to ``VOICEMAIL_NOTIFY_TO`` when the assistant left a voicemail.

The relay knows when a voicemail was left (it ends the call once Twilio has played the whole
message) but never calls Twilio REST on a call's path, so it queues this task with the call's
transcript. Sent at most once per call: a lock keeps two deliveries apart and a Redis marker,
set once Twilio accepted the SMS, stops a redelivery. Transient Twilio failures are retried
with backoff; a notice that still cannot be sent is logged with its call SID.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from common.config import Config, get_config
from common.end_reasons import EndReason
from common.names import SMS_MAX_CHARS, fit_sms
from common.redis_util import get_redis, key
from common.task_names import NOTIFY_VOICEMAIL
from common.twilio_client import get_twilio
from tasks.retry import locked_run
from tasks.twilio_ops import MARKER_SECONDS

log = logging.getLogger(__name__)

MAX_SMS_CHARS = SMS_MAX_CHARS


def notice_text(notice: dict[str, Any]) -> str:
    """What the notified person reads: who was called, which call, and what was said."""
    callee = str(notice.get("callee") or "an unknown number")
    call = str(notice.get("call_sid") or "")
    said = " ".join(
        str(text) for who, text in notice.get("lines") or [] if str(who).startswith("assistant")
    )
    if notice.get("reason") == EndReason.VOICEMAIL_LEFT:
        head = f"The GateFrames A.I. assistant left a voicemail for {callee} (call {call})"
    else:
        head = (
            f"The GateFrames A.I. assistant tried to leave a voicemail for {callee} "
            f"(call {call}), but the machine did not let it finish"
        )
    body = f'{head}: "{said}"' if said else f"{head}."
    return fit_sms(body, MAX_SMS_CHARS)


@shared_task(bind=True, name=NOTIFY_VOICEMAIL, acks_late=True, max_retries=None)
def notify_voicemail(self, notice: dict[str, Any]) -> str:
    cfg = get_config()
    call_sid = str(notice.get("call_sid") or "")
    ctx = {"call_sid": call_sid, "task_id": self.request.id, "attempt": self.request.retries}
    if not cfg.voicemail_notify_to or not call_sid:
        log.info("voicemail notice not wanted", extra={**ctx, "outcome": "skipped"})
        return "skipped"
    return locked_run(
        self,
        cfg,
        key("lock", "voicemail", call_sid),
        ctx,
        "voicemail notice",
        lambda: _send_once(cfg, notice, call_sid),
    )


def _send_once(cfg: Config, notice: dict[str, Any], call_sid: str) -> str:
    marker = key("voicemail_notified", call_sid)
    if get_redis().exists(marker):
        return "already_sent"
    message = get_twilio().messages.create(
        to=cfg.voicemail_notify_to, from_=cfg.bot_projected_address, body=notice_text(notice)
    )
    get_redis().set(marker, message.sid or "sent", ex=MARKER_SECONDS)
    return "sent"
