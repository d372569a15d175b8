"""Daily caps on outbound calls, shared by every worker through Redis.

Each placed call takes one unit from the author's allowance and one from everyone's; the two
are checked and taken in one Lua script so concurrent workers cannot both take the last one.
A call Twilio refused gives its units back. Days are UTC days; the keys expire after two.
"""

from __future__ import annotations

import datetime as dt

from common.config import Config
from common.redis_util import get_redis, key

_RESERVE = """
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
local g = tonumber(redis.call('GET', KEYS[2]) or '0')
if a >= tonumber(ARGV[1]) then return 1 end
if g >= tonumber(ARGV[2]) then return 2 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 0
"""
_RELEASE = """
for _, k in ipairs(KEYS) do
  if tonumber(redis.call('GET', k) or '0') > 0 then redis.call('DECR', k) end
end
return 0
"""
TTL_SECONDS = 2 * 24 * 3600


class CapReached(Exception):
    """The author's or everyone's calls for today are used up (``scope`` says which)."""

    def __init__(self, scope: str):
        super().__init__(scope)
        self.scope = scope


def _keys(author: str, today: dt.date | None = None) -> list[str]:
    day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    return [key("calls", day, "author", author), key("calls", day, "all")]


def reserve(cfg: Config, author: str) -> None:
    """Take one call from today's allowances or raise :class:`CapReached`."""
    r = get_redis()
    result = r.eval(
        _RESERVE,
        2,
        *_keys(author),
        cfg.calls_per_author_per_day,
        cfg.calls_per_day,
        TTL_SECONDS,
    )
    if int(result) == 1:
        raise CapReached("author")
    if int(result) == 2:
        raise CapReached("all")


def release(author: str) -> None:
    """Give back a unit taken for a call that was never placed."""
    get_redis().eval(_RELEASE, 2, *_keys(author))


def used(author: str) -> tuple[int, int]:
    """(the author's calls today, everyone's calls today)."""
    a, g = get_redis().mget(_keys(author))
    return int(a or 0), int(g or 0)
