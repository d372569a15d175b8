"""The one Celery app factory, used by every process that touches the queue.

The worker (``tasks/celery.py``, found by ``celery -A tasks worker``) runs the tasks; the web
process and the relay only queue work by name (``send_task`` with the names in
:mod:`common.task_names`), so none of them imports another's code to reach the broker.

The shape follows pallets' flask ``examples/celery``: a ``celery_init_app`` factory, and the
worker's entry point is a two-line module in the manner of its ``make_celery.py``. One
difference: tasks here are plain Celery tasks, not ``FlaskTask``s run inside an app context,
because no task reads Flask state (they get settings from :func:`common.config.get_config`
and clients from ``common``), so the worker never builds the web app.
"""

from __future__ import annotations

from celery import Celery

#: The Celery app's ``main`` name (the prefix of auto-generated task names; ours are explicit).
APP_NAME = "gateframes"


def celery_init_app() -> Celery:
    """Create the Celery app from ``celeryconfig`` and make it the process's default app (so
    ``@shared_task`` tasks bind to it)."""
    celery_app = Celery(APP_NAME)
    celery_app.config_from_object("celeryconfig")
    celery_app.set_default()
    return celery_app
