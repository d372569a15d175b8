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


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the test item, so a fixture can tell its test failed."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def failed_in_call(request: pytest.FixtureRequest) -> bool:
    """Whether the test running ``request`` failed in its call phase (for a fixture's teardown,
    which then prints the logs of the processes the test used)."""
    rep = getattr(request.node, "rep_call", None)
    return bool(rep and rep.failed)
