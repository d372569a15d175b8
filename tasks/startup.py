"""What the worker says when it starts: a configured model's coming shutdown.

A model already shut down never gets this far: :func:`common.config.get_config` refuses it
when the Celery app is built, so the worker exits before it takes a task.
"""

from __future__ import annotations

import logging

from celery import signals

from common.config import get_config
from common.models import warn_at_start

log = logging.getLogger(__name__)


@signals.worker_init.connect
def _model_lifetimes(**_: object) -> None:
    warn_at_start(get_config(), log)
