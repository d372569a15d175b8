"""The calls in progress, in Redis, for the staff console.

The relay tracks each call from stream start to end (:func:`track`); the console lists them
(:func:`listing`). Each entry carries a TTL that the tracker renews while the call lives, so
a relay that crashes or loses Redis leaves nothing behind for longer than :data:`TTL_SECONDS`.

- ``gf:live_calls``: sorted set, member CallSid, score the epoch second the entry expires
  (readers drop members past their score);
- ``gf:live_call:<CallSid>``: the call's JSON (``call_sid``, ``caller``, ``direction``,
  ``started_at`` epoch seconds), with the same TTL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from common.names import LIVE_CALL, LIVE_CALLS
from common.redis_util import get_redis, key

log = logging.getLogger(__name__)

TTL_SECONDS = 30
#: Rewritten this often (and at once when the details change, e.g. the caller's number
#: arriving with Twilio's ``start``), well within the TTL.
REFRESH_SECONDS = 10.0
POLL_SECONDS = 1.0


def index_key() -> str:
    return key(LIVE_CALLS)


def entry_key(call_sid: str) -> str:
    return key(LIVE_CALL, call_sid)


def publish(client: redis.Redis, entry: dict[str, Any], ttl: int = TTL_SECONDS) -> None:
    call_sid = str(entry["call_sid"])
    pipe = client.pipeline()
    pipe.set(entry_key(call_sid), json.dumps(entry), ex=ttl)
    pipe.zadd(index_key(), {call_sid: time.time() + ttl})
    pipe.execute()


def remove(client: redis.Redis, call_sid: str) -> None:
    pipe = client.pipeline()
    pipe.delete(entry_key(call_sid))
    pipe.zrem(index_key(), call_sid)
    pipe.execute()


def listing(client: redis.Redis) -> list[dict[str, Any]]:
    """The live calls, oldest first; expired members are dropped on the way."""
    now = time.time()
    client.zremrangebyscore(index_key(), "-inf", now)
    sids = client.zrange(index_key(), 0, -1)
    if not sids:
        return []
    out = []
    for raw in client.mget([entry_key(s) for s in sids]):
        if not raw:
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return sorted(out, key=lambda e: e.get("started_at") or 0)


class Tracker:
    """One call's entry, kept fresh by a greenlet until :meth:`stop`."""

    def __init__(self, info: Callable[[], dict[str, Any]]):
        import gevent  # the relay's own loop; importing common.live_calls elsewhere spawns none

        self._info = info
        self._started_at = time.time()
        self._published: str | None = None
        self._greenlet = gevent.spawn(self._run)

    def _entry(self) -> dict[str, Any]:
        return {"started_at": self._started_at, **self._info()}

    def _run(self) -> None:
        import gevent

        last: dict[str, Any] | None = None
        written = 0.0
        while True:
            try:
                entry = self._entry()
                due = time.monotonic() - written >= REFRESH_SECONDS
                if entry.get("call_sid") and (entry != last or due):
                    publish(get_redis(), entry)
                    self._published, last, written = str(entry["call_sid"]), entry, time.monotonic()
            except redis.RedisError as exc:  # Redis away: the entry expires, the call goes on
                log.debug("live call entry not written: %s", type(exc).__name__)
            except Exception:  # a bug: said once, loudly; the call goes on
                log.exception("live call entry cannot be built; the console will not list it")
                return
            gevent.sleep(POLL_SECONDS)

    def stop(self) -> None:
        # Blocking: a write under way must not land after the removal below.
        self._greenlet.kill(block=True, timeout=1)
        if self._published:
            with contextlib.suppress(redis.RedisError):  # else the TTL removes it
                remove(get_redis(), self._published)


def track(info: Callable[[], dict[str, Any]]) -> Tracker:
    """Keep ``info()`` (``call_sid``, ``caller``, ``direction``) listed until ``stop()``."""
    return Tracker(info)
