"""The console's stack for a module, on each database the module names in ``BACKENDS``
(default: both), reset between tests; a failed test prints the processes' logs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.conftest import REDIS_URL, failed_in_call
from tests.console.stack import ConsoleStack
from tests.databases import BACKENDS, fresh_database
from tests.support import http_json


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = getattr(metafunc.module, "BACKENDS", BACKENDS)
        metafunc.parametrize("backend", backends, scope="module")


@pytest.fixture(scope="module")
def stack(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ConsoleStack]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    log_dir = tmp_path_factory.mktemp(f"console-{backend}")
    url = fresh_database(backend, log_dir)
    env = getattr(request.module, "STACK_ENV", None)
    s = ConsoleStack(log_dir, REDIS_URL, url, env).start()
    yield s
    s.stop()


@pytest.fixture
def console(stack: ConsoleStack, request: pytest.FixtureRequest) -> Iterator[ConsoleStack]:
    http_json("POST", stack.openai_url + "/_sandbox/reset")
    yield stack
    if failed_in_call(request):
        print(stack.logs())
