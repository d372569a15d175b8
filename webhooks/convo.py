"""POST /twilio/convo: the Conversations post-event webhook.

The request does no Twilio or OpenAI work: it checks the signature, applies the
per-conversation limit, drops duplicates, makes the event durable (broker or spool) and
answers. Conversations webhooks time out after 5 s, and the model alone can take longer.
"""

from __future__ import annotations

import logging
import re

import redis
from flask import Blueprint, current_app, request
from limits import parse

from common import inbox, stats
from common.config import Config
from common.names import WEBHOOK_EVENTS
from common.redis_util import claim, get_redis, key
from webhooks.extensions import limiter
from webhooks.queue import Spool, publish
from webhooks.security import twilio_signed

log = logging.getLogger(__name__)

bp = Blueprint("convo", __name__)

#: Events that lead to a reply; Twilio may be configured to send others, which we ignore.
HANDLED_EVENTS = {"onMessageAdded", "onConversationStateUpdated"}

_CONVERSATION_SID = re.compile(r"^CH[0-9a-fA-F]{32}$")

EVENTS = WEBHOOK_EVENTS


def _text(body: str, status: int = 200):
    return body + "\n", status, {"Content-Type": "text/plain"}


def dedupe_key(form) -> str | None:
    """``MessageSid``, else ``ConversationSid:Index`` (None for events without a message)."""
    if form.get("MessageSid"):
        return form["MessageSid"]
    if form.get("Index"):
        return f"{form['ConversationSid']}:{form['Index']}"
    return None


def _conversation_limited(cfg: Config, conversation_sid: str) -> bool:
    """True when this conversation is over its event budget (Redis, shared by all processes).
    If the limit store is unreachable we let the event through: losing a message is worse."""
    try:
        return not limiter.limiter.hit(parse(cfg.convo_rate_limit), "convo", conversation_sid)
    except Exception as exc:
        log.warning(
            "conversation limit unavailable: %s",
            type(exc).__name__,
            extra={"conversation_sid": conversation_sid},
        )
        return False


@bp.post("/twilio/convo")
@twilio_signed
def convo_event():
    cfg: Config = current_app.extensions["gateframes_config"]
    form = request.form
    event_type = form.get("EventType", "")
    conversation_sid = form.get("ConversationSid", "")
    ctx = {
        "conversation_sid": conversation_sid or None,
        "event_type": event_type or None,
        "message_sid": form.get("MessageSid") or None,
    }

    if event_type not in HANDLED_EVENTS:
        log.info("ignored event type", extra={**ctx, "outcome": "ignored"})
        stats.incr(EVENTS, "convo", "ignored")
        return _text("ignored")
    if not _CONVERSATION_SID.match(conversation_sid):
        log.warning("event without a valid ConversationSid", extra={**ctx, "outcome": "rejected"})
        stats.incr(EVENTS, "convo", "rejected")
        return _text("missing or malformed ConversationSid", 400)

    if _conversation_limited(cfg, conversation_sid):
        log.warning(
            "conversation over its event limit; event ignored",
            extra={**ctx, "outcome": "rate_limited"},
        )
        stats.incr(EVENTS, "convo", "rate_limited")
        return _text("rate limited; ignored")

    dkey = dedupe_key(form)
    event = {k: form.get(k) for k in form}
    if dkey is not None:
        event[inbox.ID_FIELD] = dkey  # one inbox entry per message, however often posted
    if dkey is not None:
        try:
            fresh = claim(get_redis(), key("dedupe", dkey), ex=cfg.dedupe_seconds)
        except redis.RedisError:
            fresh = True  # the task's own reply marker still prevents a second reply
        if not fresh:
            log.info("duplicate event dropped", extra={**ctx, "outcome": "duplicate"})
            stats.incr(EVENTS, "convo", "duplicate")
            return _text("duplicate")

    celery_app = current_app.extensions["celery"]
    try:
        publish(celery_app, event, cfg.publish_retry_seconds)
    except Exception as exc:
        try:
            Spool(cfg.spool_dir).put(event)
        except OSError:
            log.exception(
                "broker unreachable and spool write failed; asking Twilio to retry",
                extra={**ctx, "outcome": "failed"},
            )
            stats.incr(EVENTS, "convo", "failed")
            return _text("temporarily unable to accept the event", 503)
        log.warning(
            "broker unreachable (%s); event spooled to disk",
            type(exc).__name__,
            extra={**ctx, "outcome": "spooled"},
        )
        stats.incr(EVENTS, "convo", "spooled")
        return _text("spooled")
    log.info("event queued", extra={**ctx, "outcome": "queued"})
    stats.incr(EVENTS, "convo", "queued")
    return _text("ok")
