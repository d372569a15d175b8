"""A shared SMS stack for the module, reset between tests.

A module that needs other settings names them in ``STACK_ENV`` (a dict of variables)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.conftest import REDIS_URL, failed_in_call
from tests.sms.stack import Stack
from tests.support import http_json


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = getattr(request.module, "STACK_ENV", None)
    s = Stack(tmp_path_factory.mktemp("sms-stack"), REDIS_URL, env=env).start()
    yield s
    s.stop()


@pytest.fixture
def sms(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The module's stack with empty simulators and Redis."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    http_json("POST", stack.twilio_url + "/_sandbox/reset")
    http_json("POST", stack.openai_url + "/_sandbox/reset")
    yield stack
    if failed_in_call(request):
        print(stack.logs())
