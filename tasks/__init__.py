"""The Celery worker's tasks: ``celery -A tasks worker``.

The app itself is in :mod:`tasks.celery` (Celery looks there when ``tasks`` has no ``app``),
made by the shared factory :func:`common.celery_app.celery_init_app`; the task modules are
listed in celeryconfig ``imports``.
"""
