"""A database whose schema was never migrated: the web process and the worker say so in
their logs, the console answers 503 naming the command to run, and customers still get
their answers (the log is skipped, not the reply)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.conftest import REDIS_URL
from tests.console.stack import ConsoleStack
from tests.support import wait_for

PROBLEM = "call and text log unavailable: the database has no schema: run `python -m store migrate`"


@pytest.fixture(scope="module")
def unmigrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    log_dir = tmp_path_factory.mktemp("console-unmigrated")
    s = ConsoleStack(log_dir, REDIS_URL, f"sqlite:///{log_dir / 'never-migrated.db'}").start()
    yield s
    s.stop()


def said(stack: ConsoleStack, process: str) -> bool:
    return any(r.get("msg") == PROBLEM for r in stack.log_records(process))


def test_an_unmigrated_log_is_named_and_texts_are_still_answered(unmigrated: ConsoleStack) -> None:
    wait_for(lambda: said(unmigrated, "web") and said(unmigrated, "worker"), timeout=30)
    sent = unmigrated.text("+14155550150", "Do you sell gate hinges?")
    assert unmigrated.outcome(sent["message_sid"]) == "replied"
    staff = unmigrated.staff()
    page = staff.get("/staff/")
    assert page.status == 503
    assert "the database has no schema: run `python -m store migrate`" in page.text
    assert staff.get("/staff/api/calls").status == 503
    lines = len([r for r in unmigrated.log_records("worker") if r.get("msg") == PROBLEM])
    again = unmigrated.text(
        "+14155550150", "And latches?", conversation_sid=sent["conversation_sid"]
    )
    assert unmigrated.outcome(again["message_sid"]) == "replied"
    # said once per worker process, not at every text
    assert len([r for r in unmigrated.log_records("worker") if r.get("msg") == PROBLEM]) == lines
