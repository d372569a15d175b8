"""Celery settings (read by :func:`common.celery_app.celery_init_app`).

Delivery is at-least-once by design: ``acks_late`` plus ``reject_on_worker_lost`` re-run a
task whose worker died, and the task itself guarantees at most one reply (a Redis lock, a
reply marker and a look at the conversation before posting). The Redis visibility timeout is
how long an unacknowledged message waits before another worker gets it; it must stay above the
longest task run, which the hard time limit bounds (retry countdowns are short for the same
reason: a countdown longer than the visibility timeout would be delivered twice).
"""

from common.config import get_config

_cfg = get_config()

broker_url = _cfg.redis_url
broker_connection_retry_on_startup = True
broker_connection_timeout = 1.0
broker_transport_options = {
    "visibility_timeout": _cfg.celery_visibility_timeout,
    # Sweep for a dead worker's unacknowledged tasks every few seconds (kombu's default is one
    # scan per ~100 s, far longer than a customer should wait after a crash).
    "unacked_restore_interval": max(1, min(10, _cfg.celery_visibility_timeout // 4)),
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 1.0,
    "socket_timeout": 5.0,
    "socket_keepalive": True,
    "retry_on_timeout": True,
}
task_ignore_result = True
result_backend = None
task_acks_late = True
task_reject_on_worker_lost = True
# A task that raises (e.g. Redis down while it retries) is not acknowledged: it comes back
# after the visibility timeout. Every handled outcome returns normally and is acknowledged.
task_acks_on_failure = False
task_acks_on_timeout = False
worker_prefetch_multiplier = 1
task_default_queue = "gateframes"
task_serializer = "json"
accept_content = ["json"]
imports = (
    "tasks.convo",
    "tasks.voicemail",
    "tasks.summary",
    "tasks.metrics",
    "tasks.call_log",
    "tasks.staff",
    "tasks.startup",
)
worker_hijack_root_logger = False
worker_cancel_long_running_tasks_on_connection_loss = False
# The hard limit bounds every run, so the visibility timeout (limit + 30 s by default) and the
# per-message lock (= limit) can be short: a message whose worker was SIGKILLed comes back
# after about visibility + one restore sweep (~130 s with the defaults), and its lock is free.
task_time_limit = _cfg.task_time_limit_seconds
task_soft_time_limit = task_time_limit - max(1, min(15, task_time_limit // 4))
