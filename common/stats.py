"""Counters shared by every web and worker process, kept in Redis, exported by ``/metrics``.

Why Redis and not plain prometheus-client counters: the web runs several gunicorn workers and
the Celery workers scale out on other machines, so a per-process counter would show whichever
process the scrape happened to hit. One Redis hash (``gf:metrics``) holds every series; each
event costs one ``HINCRBYFLOAT`` (best effort: a metrics write never fails a webhook or a
task), and :class:`RedisCollector` turns the hash into Prometheus families at scrape time.

The relay does not use this: it is one process per dyno with its own in-memory metrics, and
its frame path must not touch Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from prometheus_client.core import CounterMetricFamily, Metric, SummaryMetricFamily

from common.names import TASK_RETRIES, TASK_RUNS, TASK_SECONDS, WEBHOOK_EVENTS
from common.redis_util import get_redis, key

log = logging.getLogger(__name__)

HASH = key("metrics")


@dataclass(frozen=True)
class Series:
    help: str
    labels: tuple[str, ...]
    summary: bool = False  # a duration: exported as _count and _sum


SERIES: dict[str, Series] = {
    WEBHOOK_EVENTS: Series("Twilio webhook requests by route and outcome", ("route", "outcome")),
    TASK_RUNS: Series("Celery task runs by task and outcome", ("task", "outcome")),
    TASK_RETRIES: Series("Celery task retries scheduled", ("task",)),
    TASK_SECONDS: Series("Celery task run time", ("task",), summary=True),
}


def _field(name: str, values: tuple[str, ...], part: str = "") -> str:
    # "|" and "," never occur in our label values (route names, outcomes, task names).
    return f"{name}{part}|" + ",".join(v.replace("|", "_").replace(",", "_") for v in values)


def incr(name: str, *values: str, amount: float = 1.0) -> None:
    """Add ``amount`` to the series ``name`` with these label values (best effort)."""
    try:
        get_redis().hincrbyfloat(HASH, _field(name, values), amount)
    except redis.RedisError:
        log.debug("metric %s not recorded (Redis unreachable)", name)


def observe(name: str, seconds: float, *values: str) -> None:
    """One observation of a duration series (count and sum in one round trip)."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.hincrbyfloat(HASH, _field(name, values, ":count"), 1)
        pipe.hincrbyfloat(HASH, _field(name, values, ":sum"), seconds)
        pipe.execute()
    except redis.RedisError:
        log.debug("metric %s not recorded (Redis unreachable)", name)


class RedisCollector:
    """A prometheus-client collector that reads the shared hash at scrape time."""

    def collect(self) -> Iterator[Metric]:
        try:
            raw = get_redis().hgetall(HASH)
        except redis.RedisError:
            return
        counts: dict[str, dict[tuple[str, ...], float]] = {}
        sums: dict[str, dict[tuple[str, ...], float]] = {}
        for field, value in raw.items():
            head, _, labels = field.partition("|")
            name, _, part = head.partition(":")
            if name not in SERIES:
                continue
            values = tuple(labels.split(",")) if labels else ()
            target = sums if part == "sum" else counts
            target.setdefault(name, {})[values] = float(value)
        for name, series in SERIES.items():
            if series.summary:
                family: Metric = SummaryMetricFamily(name, series.help, labels=series.labels)
                for values, count in counts.get(name, {}).items():
                    total = sums.get(name, {}).get(values, 0.0)
                    family.add_metric(list(values), count_value=count, sum_value=total)
            else:
                family = CounterMetricFamily(name, series.help, labels=series.labels)
                for values, count in counts.get(name, {}).items():
                    family.add_metric(list(values), count)
            yield family
