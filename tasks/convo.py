"""The Celery task that answers a Conversations event.

Exactly one reply per message, whatever happens: duplicates are stopped by a per-message lock
(so two deliveries never work at once) and by :func:`twilio_ops.post_once`; failures of Twilio
or OpenAI are retried with exponential backoff, and after the last retry the customer gets the
maintenance reply instead of silence.

While a staff member holds the thread (:mod:`common.takeover`) the assistant says nothing; a
texter asking for a person is handed to staff (:mod:`tasks.handoff`). Each text handled and
each reply posted goes to the call and text log (:mod:`tasks.text_log`).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import shared_task
from twilio.rest import Client

from common import inbox, takeover
from common.config import Config, get_config
from common.openai_client import get_openai
from common.prompts import MAINTENANCE_REPLY
from common.redis_util import TaskLock, get_redis, key
from common.task_names import HANDLE_EVENT
from common.twilio_client import get_twilio
from tasks import commands, handoff, text_log, twilio_ops
from tasks.chat import Turn, build_messages, complete, media_types
from tasks.parsing import mentions_ai, parse_command
from tasks.retry import backoff, is_transient, retry_later, twilio_status

log = logging.getLogger(__name__)


def turn_from_event(event: dict[str, Any]) -> Turn:
    index = event.get("Index")
    return Turn(
        author=event.get("Author") or "",
        body=event.get("Body") or "",
        media=media_types(event.get("Media")),
        index=int(index) if index not in (None, "") and str(index).isdigit() else -1,
        sid=event.get("MessageSid") or "",
    )


def respond(
    cfg: Config, conversation_sid: str, turn: Turn, reply_key: str, only_unanswered: bool = False
) -> str:
    """Do the work for one message; return an outcome word for the log."""
    client = get_twilio()
    if takeover.holder(get_redis(), conversation_sid):
        return "taken_over"  # a staff member holds the thread: the assistant stays silent
    if only_unanswered and twilio_ops.already_replied(client, cfg, conversation_sid, reply_key):
        return "already_replied"
    participants = twilio_ops.list_participants(client, conversation_sid)
    group = twilio_ops.is_group(cfg, participants)
    command = parse_command(turn.body)
    if group and (command or mentions_ai(turn.body)):
        twilio_ops.ensure_bot(client, cfg, conversation_sid, participants)

    if command is not None:
        ack = commands.run(client, cfg, reply_key, turn.author, command)
        sid = twilio_ops.post_once(client, cfg, conversation_sid, reply_key, ack)
        _logged(client, cfg, conversation_sid, reply_key, ack, sid)
        return f"command_{command.name}"

    if group and not mentions_ai(turn.body):
        return "group_not_mentioned"
    if twilio_ops.already_replied(client, cfg, conversation_sid, reply_key):
        _logged(client, cfg, conversation_sid, reply_key, None, None)
        return "already_replied"
    if handoff.asks_for_person(turn.body):
        sid = handoff.hand_off(client, cfg, conversation_sid, reply_key, turn.author)
        _logged(client, cfg, conversation_sid, reply_key, handoff.HANDOFF_REPLY, sid)
        return "handed_to_staff"
    history = twilio_ops.recent_turns(client, conversation_sid, cfg.chat_history_limit)
    messages = build_messages(
        history, turn, bot_authors=twilio_ops.bot_authors(cfg), is_group=group
    )
    reply = complete(get_openai(), cfg.openai_chat_model, messages)
    if takeover.holder(get_redis(), conversation_sid):
        return "taken_over"  # taken while the model was thinking: staff have the thread now
    sid = twilio_ops.post_once(client, cfg, conversation_sid, reply_key, reply)
    _logged(client, cfg, conversation_sid, reply_key, reply, sid)
    return "replied" if sid else "already_replied"


def _logged(
    client: Client, cfg: Config, conversation_sid: str, reply_key: str, body: str | None,
    sid: str | None,
) -> None:  # fmt: skip
    text_log.record_post(client, conversation_sid, reply_key, body, sid, author=cfg.bot_identity)


def post_maintenance(cfg: Config, conversation_sid: str, reply_key: str) -> None:
    """Best effort: if Twilio itself is down there is nobody to tell but the log."""
    try:
        client = get_twilio()
        participants = twilio_ops.list_participants(client, conversation_sid)
        if twilio_ops.is_group(cfg, participants):
            twilio_ops.ensure_bot(client, cfg, conversation_sid, participants)
        sid = twilio_ops.post_once(client, cfg, conversation_sid, reply_key, MAINTENANCE_REPLY)
        _logged(client, cfg, conversation_sid, reply_key, MAINTENANCE_REPLY, sid)
    except Exception:
        log.exception(
            "could not post the maintenance reply",
            extra={
                "conversation_sid": conversation_sid,
                "message_sid": reply_key,
                "outcome": "lost_reply",
            },
        )


@shared_task(bind=True, name=HANDLE_EVENT, acks_late=True, max_retries=None)
def handle_event(self, event: dict[str, Any]) -> str:
    """Answer one Conversations event; a final outcome clears its inbox entry (a retry or a
    crash leaves it, so the web's sweeper can publish the event again if it goes missing)."""
    outcome = _handle(self, event)
    if outcome != "busy":  # "busy" handed the event to a new copy of this task
        inbox.done(event)
    return outcome


def _handle(self, event: dict[str, Any]) -> str:
    cfg = get_config()
    conversation_sid = event.get("ConversationSid") or ""
    ctx = {
        "conversation_sid": conversation_sid,
        "task_id": self.request.id,
        "event_type": event.get("EventType"),
        "attempt": self.request.retries,
    }

    state_to = event.get("StateTo") or ""
    if event.get("EventType") == "onConversationStateUpdated":
        if state_to == "closed":
            # A closed conversation is final: Twilio refuses any post to it (50377).
            log.info("conversation closed; no reply", extra={**ctx, "outcome": "skipped"})
            return "skipped"
        try:
            newest = twilio_ops.newest_turn(get_twilio(), conversation_sid)
        except Exception as exc:
            if is_transient(exc) and self.request.retries < cfg.task_max_retries:
                raise self.retry(exc=exc, countdown=backoff(cfg, self.request.retries)) from exc
            log.exception("could not read the newest message", extra=ctx)
            return "failed"
        if newest is None:
            log.info("conversation has no messages", extra={**ctx, "outcome": "skipped"})
            return "skipped"
        turn = newest
    else:
        turn = turn_from_event(event)

    reply_key = turn.sid or f"{conversation_sid}:{turn.index}"
    ctx["message_sid"] = reply_key
    if turn.author in twilio_ops.bot_authors(cfg):
        log.info("message by the bot or system; no reply", extra={**ctx, "outcome": "skipped"})
        return "skipped"
    if not turn.body.strip() and not turn.media:
        log.info("empty message; no reply", extra={**ctx, "outcome": "skipped"})
        return "skipped"
    text_log.record_turn(conversation_sid, turn, event.get("DateCreated"))

    lock = TaskLock(key("lock", reply_key), cfg.task_lock_seconds)
    try:
        if not lock.take():
            return _wait_for_lock(cfg, event, ctx)
        # A state change is not a new message: answer only a customer message nobody answered.
        only_unanswered = event.get("EventType") == "onConversationStateUpdated"
        outcome = respond(cfg, conversation_sid, turn, reply_key, only_unanswered)
    except Exception as exc:
        transient = is_transient(exc)
        if transient and self.request.retries < cfg.task_max_retries:
            retry_later(self, cfg, exc, ctx, "transient failure")
        if isinstance(exc, redis.RedisError):
            # Without Redis no reply can be posted safely (the markers live there). Raise:
            # the message stays unacknowledged and comes back once Redis is.
            log.warning("Redis unavailable; leaving the message for redelivery", extra=ctx)
            raise
        log.error(
            "giving up after %s: %s",
            "retries" if transient else "a permanent error",
            f"{type(exc).__name__}: {exc}"[:300],
            extra={**ctx, "outcome": "maintenance"},
        )
        status = twilio_status(exc)
        if status is not None and 400 <= status < 500 and status != 429:
            return "failed"  # the conversation itself is unusable (gone, forbidden)
        post_maintenance(cfg, conversation_sid, reply_key)
        return "maintenance"
    finally:
        lock.release()
    log.info("event handled", extra={**ctx, "outcome": outcome})
    return outcome


def _wait_for_lock(cfg: Config, event: dict[str, Any], ctx: dict[str, Any]) -> str:
    """Another delivery is working on this message. Look again later instead of blocking a
    worker: if that worker died, its lock expires and this delivery takes over."""
    waits = int(event.get("_lock_waits") or 0)
    if waits > cfg.task_lock_seconds:
        log.error("message lock never freed; giving up", extra={**ctx, "outcome": "lock_timeout"})
        return "lock_timeout"
    handle_event.apply_async(args=[{**event, "_lock_waits": waits + 1}], countdown=1.0)
    log.info(
        "message busy in another delivery; rechecking shortly", extra={**ctx, "outcome": "busy"}
    )
    return "busy"
