"""The inbox: every accepted Conversations event is remembered until its task finishes.

Why: Celery's Redis transport moves a message from the queue to its unacknowledged set in two
steps (``BRPOP``, then ``HSET``), and restores it in two steps as well. A worker or Redis dying
between them loses the message: seen once in a thousand texts in the soak test (a worker
fetching just as Redis restarted). Acknowledging late cannot cover that gap, so the web process
records each event here *before* publishing it, the task removes it once it reaches a final
outcome, and a sweeper in every web process publishes again whatever is still here after
``INBOX_REDELIVER_SECONDS``. A second delivery is harmless: the reply marker and the look at
the conversation keep it to one reply.

Layout: ``gf:inbox`` is a sorted set of event ids scored by when to redeliver; ``gf:inbox_body``
holds the event JSON by id.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from common.redis_util import get_redis, key

log = logging.getLogger(__name__)

INDEX = key("inbox")
BODIES = key("inbox_body")
ID_FIELD = "_inbox_id"


def record(event: dict[str, Any], redeliver_after: float, event_id: str | None = None) -> str:
    """Remember ``event`` (adding its id under ``_inbox_id``); raise RedisError if Redis is down."""
    event_id = event.get(ID_FIELD) or event_id or uuid.uuid4().hex
    event[ID_FIELD] = event_id
    pipe = get_redis().pipeline(transaction=True)
    pipe.hset(BODIES, event_id, json.dumps(event))
    pipe.zadd(INDEX, {event_id: time.time() + redeliver_after})
    pipe.execute()
    return event_id


def done(event: dict[str, Any]) -> None:
    """The event's task reached a final outcome: forget it (best effort; a leftover entry
    only causes one harmless redelivery)."""
    event_id = event.get(ID_FIELD)
    if not event_id:
        return
    try:
        pipe = get_redis().pipeline(transaction=True)
        pipe.zrem(INDEX, event_id)
        pipe.hdel(BODIES, event_id)
        pipe.execute()
    except redis.RedisError:
        log.info("inbox entry not cleared (Redis unavailable)", extra={"task_id": event_id})


def sweep(
    publish: Callable[[dict[str, Any]], None], redeliver_after: float, limit: int = 200
) -> int:
    """Publish again every event overdue in the inbox; return how many. Safe to run in every
    web process at once: an entry is claimed by removing it (only one ``ZREM`` wins)."""
    client = get_redis()
    sent = 0
    for event_id in client.zrangebyscore(INDEX, 0, time.time(), start=0, num=limit):
        if not client.zrem(INDEX, event_id):
            continue  # another process claimed it
        body = client.hget(BODIES, event_id)
        if body is None:
            continue  # finished meanwhile
        client.zadd(INDEX, {event_id: time.time() + redeliver_after})
        event = json.loads(body)
        publish(event)
        sent += 1
        log.warning(
            "event had no finished task in time; published again",
            extra=log_context(event, "redelivered"),
        )
    return sent


def log_context(event: dict[str, Any], outcome: str) -> dict[str, Any]:
    """The ids a log line about a Conversations event carries."""
    return {
        "conversation_sid": event.get("ConversationSid"),
        "message_sid": event.get("MessageSid"),
        "outcome": outcome,
    }
