"""Task run counts, durations and retries, recorded through Celery's signals.

Signals keep the task bodies free of bookkeeping. Series live in Redis (:mod:`common.stats`),
so every worker on every machine adds to the same numbers and the web's ``/metrics`` shows
them; a Redis outage only loses metrics, never a task.
"""

from __future__ import annotations

import time
from typing import Any

from celery import signals

from common import stats
from common.names import TASK_RETRIES, TASK_RUNS, TASK_SECONDS

_started: dict[str, float] = {}


@signals.task_prerun.connect
def _prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def _postrun(
    task_id: str | None = None,
    task: Any = None,
    retval: Any = None,
    state: str | None = None,
    **_: Any,
) -> None:
    began = _started.pop(task_id or "", None)
    name = getattr(task, "name", "unknown")
    if state == "RETRY":
        outcome = "retry"
    elif state == "SUCCESS":
        outcome = retval if isinstance(retval, str) and len(retval) < 40 else "ok"
    else:
        outcome = (state or "unknown").lower()
    stats.incr(TASK_RUNS, name, outcome)
    if began is not None:
        stats.observe(TASK_SECONDS, time.monotonic() - began, name)


@signals.task_retry.connect
def _retry(sender: Any = None, **_: Any) -> None:
    stats.incr(TASK_RETRIES, getattr(sender, "name", "unknown"))
