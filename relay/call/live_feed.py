"""A call as it happens, for those following it: its transcript lines on Redis pub/sub
(``gf:call_transcript:<CallSid>``), which ``python -m sandbox call`` and operators read."""

from __future__ import annotations

import logging

import orjson
import redis

from common.names import call_transcript_channel
from common.redis_util import get_redis

log = logging.getLogger(__name__)


def publish_transcript(call_sid: str, lines: list[tuple[str, str]]) -> None:
    """Publish ``lines`` (blocking: run it in its own greenlet, off the frame path)."""
    try:
        client, channel = get_redis(), call_transcript_channel(call_sid)
        for who, text in lines:
            client.publish(channel, orjson.dumps({"who": who, "text": text}))
    except redis.RedisError:
        log.info("transcript not published", extra={"call_sid": call_sid})
