"""Suite-wide fixtures: the real Redis on a dedicated DB, and process logs."""

from __future__ import annotations

import os

import pytest
import redis

from tests.support import TEST_REDIS_DB

os.environ["GATEFRAMES_DOTENV"] = "0"
REDIS_URL = f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
# Code under test in this process (the spool's inbox records, say) uses the suite's DB too.
os.environ["REDIS_URL"] = REDIS_URL


@pytest.fixture
def redis_url() -> str:
    """URL of the suite's Redis DB, flushed before the test."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    return REDIS_URL


@pytest.fixture
def redis_client(redis_url: str):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()
