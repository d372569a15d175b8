"""The Celery worker: ``celery -A tasks worker``.

The Celery app is created by the Flask app factory (pallets' ``celery_init_app`` pattern) so
tasks run inside an app context; task modules are listed in celeryconfig ``imports``. It is
built on first access, so importing a pure helper such as ``tasks.parsing`` builds nothing.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery", "flask_app"):
        from webhooks import create_app

        flask_app = create_app()
        globals().update(flask_app=flask_app, celery=flask_app.extensions["celery"])
        globals()["app"] = globals()["celery"]
        return globals()[name]
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")
