"""Work the relay hands to the Celery workers once a call is over.

The relay never calls Twilio REST for a notification on a call's greenlets; it queues a task
(a Redis write) and the workers do the slow part with retries. Queuing retries the broker
for a few seconds; a notice that cannot be queued is logged with its call SID.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from common.celery_app import celery_init_app
from common.end_reasons import EndReason
from common.stream_twiml import other_party
from common.task_names import NOTIFY_VOICEMAIL, STORE_CALL, SUMMARIZE_CALL
from relay import metrics

log = logging.getLogger(__name__)

#: Broker retries while queuing: about 9 s in all, covering a Redis restart or failover.
RETRY_POLICY = {"max_retries": 6, "interval_start": 0.2, "interval_step": 0.5}

_app: Celery | None = None


def _celery() -> Celery:
    """The shared Celery app (:mod:`common.celery_app`), used here only to queue by name."""
    global _app
    if _app is None:
        _app = celery_init_app()
    return _app


def queue_voicemail_notice(
    call_sid: str, params: dict[str, str], reason: EndReason, lines: list[tuple[str, str]]
) -> bool:
    notice: dict[str, Any] = {
        "call_sid": call_sid,
        "callee": other_party(params),
        "reason": str(reason),
        "lines": [list(line) for line in lines],
    }
    return _queue(NOTIFY_VOICEMAIL, notice, call_sid, "voicemail notice", "notice_lost",
                  metrics.VOICEMAIL_NOTICES)  # fmt: skip


def queue_summary(record: dict[str, Any]) -> bool:
    """Queue the after-call summary for staff (tasks/summary.py); call it once per call.

    ``record``: ``call_sid``; ``caller`` (the other party's number: ``from`` inbound, ``to``
    on an outbound call, see :func:`common.stream_twiml.other_party`); ``direction``
    (``inbound``/``outbound``);
    ``started_at``/``ended_at`` (epoch seconds or ISO 8601); ``outcome`` (why it ended: a
    :class:`common.end_reasons.EndReason` such as ``caller_hung_up``, ``assistant_hung_up``,
    ``transferred``, ``voicemail_left``); ``lines`` (``[who, text]`` pairs as in the
    transcript log, ``who`` ``caller`` or ``assistant…``);
    ``tool_calls`` (``{"name", "arguments", "result"}``), ``messages`` (messages taken for
    staff) and ``transfers`` (``{"to", "status"}``). Everything must be JSON."""
    call_sid = str(record.get("call_sid") or "")
    return _queue(SUMMARIZE_CALL, record, call_sid, "call summary", "summary_lost",
                  metrics.SUMMARIES)  # fmt: skip


def queue_record(record: dict[str, Any]) -> bool:
    """Queue the call's record (the same as :func:`queue_summary`'s) for the call log."""
    call_sid = str(record.get("call_sid") or "")
    return _queue(STORE_CALL, record, call_sid, "call record", "record_lost", metrics.CALL_RECORDS)


def _queue(task: str, payload: dict[str, Any], call_sid: str, what: str, lost: str,
           counter: Any) -> bool:  # fmt: skip
    """Queue ``task`` by name (retrying the broker); count and log queued or lost."""
    try:
        _celery().send_task(task, args=[payload], retry=True, retry_policy=RETRY_POLICY)
    except Exception as exc:
        log.error(
            "%s not queued: %s", what, type(exc).__name__,
            extra={"call_sid": call_sid, "outcome": lost},
        )  # fmt: skip
        counter.labels("lost").inc()
        return False
    counter.labels("queued").inc()
    log.info("%s queued", what, extra={"call_sid": call_sid, "outcome": "queued"})
    return True
