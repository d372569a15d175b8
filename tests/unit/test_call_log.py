"""The daily purge is queued by one worker a day: the day's Redis marker decides which."""

from __future__ import annotations

import datetime as dt

import redis

from tasks.call_log import purge_due


def test_one_worker_a_day_takes_the_purge(redis_client: redis.Redis) -> None:
    today, tomorrow = dt.date(2026, 12, 7), dt.date(2026, 12, 8)
    assert purge_due(today) is True
    assert purge_due(today) is False  # another worker, or a restart the same day
    assert purge_due(tomorrow) is True
    assert 0 < redis_client.ttl("gf:log_purge:2026-12-07") <= 2 * 86_400
