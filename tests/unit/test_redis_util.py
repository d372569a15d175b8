"""The shared Redis helpers against the suite's real Redis: once-only claims and task locks."""

from __future__ import annotations

import time

import redis

from common.redis_util import TaskLock, claim, get_redis, key


def test_a_claim_is_won_once_and_carries_its_ttl(redis_client: redis.Redis) -> None:
    name = key("test", "claim")
    assert claim(redis_client, name, "first", ex=60) is True
    assert claim(redis_client, name, "second", ex=60) is False
    assert redis_client.get(name) == "first"  # the loser changed nothing
    assert 0 < redis_client.ttl(name) <= 60


def test_a_claim_in_milliseconds_expires_and_can_be_won_again(redis_client: redis.Redis) -> None:
    name = key("test", "nonce")
    assert claim(redis_client, name, b"1", px=50) is True
    assert claim(redis_client, name, b"1", px=50) is False
    time.sleep(0.1)
    assert claim(redis_client, name, b"1", px=50) is True


def test_a_task_lock_is_held_by_one_taker_until_released(redis_url: str) -> None:
    name = key("lock", "test-message")
    first, second = TaskLock(name, 30), TaskLock(name, 30)
    assert first.take() is True
    assert second.take() is False  # another delivery: told at once, not kept waiting
    second.release()  # not held by it: a no-op, the first keeps the lock
    assert get_redis().exists(name) == 1
    first.release()
    assert get_redis().exists(name) == 0
    assert second.take() is True
    second.release()


def test_a_dead_holders_lock_expires(redis_url: str) -> None:
    name = key("lock", "test-dead-holder")
    assert TaskLock(name, 0.1).take() is True  # never released, as if its worker was killed
    assert TaskLock(name, 30).take() is False
    time.sleep(0.2)
    late = TaskLock(name, 30)
    assert late.take() is True
    late.release()


def test_release_never_raises_when_redis_is_gone(redis_url: str, monkeypatch) -> None:
    lock = TaskLock(key("lock", "test-gone"), 30)
    assert lock.take() is True

    def gone(*_: object, **__: object) -> None:
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(lock._lock, "release", gone)
    lock.release()  # the lock's TTL frees it; the task's own outcome is not replaced by this
    assert get_redis().exists(key("lock", "test-gone")) == 1
