"""Who holds a conversation: a staff member's takeover, kept in Redis where the worker looks
before every reply (the console sets it, the worker obeys it).

The key lives TAKEOVER_IDLE_MINUTES and each staff message renews it, so a thread nobody on
staff has written in for that long goes back to the assistant by itself.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import redis

from common.names import takeover_key


def holder(client: redis.Redis, conversation_sid: str) -> dict[str, Any] | None:
    """``{"by", "at"}`` while a staff member holds the thread, else None."""
    raw = client.get(takeover_key(conversation_sid))
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"by": "", "at": ""}


def take(client: redis.Redis, conversation_sid: str, staff_number: str, idle_minutes: int) -> None:
    value = {"by": staff_number, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    client.set(takeover_key(conversation_sid), json.dumps(value), ex=idle_minutes * 60)


def renew(client: redis.Redis, conversation_sid: str, idle_minutes: int) -> bool:
    """A staff message: the idle clock starts again (False when the thread is not held)."""
    return bool(client.expire(takeover_key(conversation_sid), idle_minutes * 60))


def release(client: redis.Redis, conversation_sid: str) -> bool:
    return bool(client.delete(takeover_key(conversation_sid)))
