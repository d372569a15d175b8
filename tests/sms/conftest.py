"""A shared SMS stack for the module, reset between tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.conftest import REDIS_URL
from tests.sms.stack import Stack
from tests.support import http_json


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    s = Stack(tmp_path_factory.mktemp("sms-stack"), REDIS_URL).start()
    yield s
    s.stop()


@pytest.fixture
def sms(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The module's stack with empty simulators and Redis."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    http_json("POST", stack.twilio_url + "/_sandbox/reset")
    http_json("POST", stack.openai_url + "/_sandbox/reset")
    yield stack
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(stack.logs())


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
