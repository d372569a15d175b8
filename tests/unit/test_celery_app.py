"""The one Celery factory: its settings, and the worker's app found without the web app."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from celery import current_app

from common import task_names
from common.celery_app import APP_NAME, celery_init_app
from common.config import get_config


def test_the_factory_reads_celeryconfig_and_becomes_the_default_app() -> None:
    app = celery_init_app()
    assert app.main == APP_NAME
    assert app.conf.broker_url == get_config().redis_url
    assert app.conf.task_default_queue == "gateframes"
    assert app.conf.task_acks_late is True
    assert current_app._get_current_object() is app  # @shared_task tasks bind to it


def test_celery_finds_the_workers_app_without_building_the_web_app() -> None:
    """``celery -A tasks worker`` resolves ``tasks`` the way this does; the worker process must
    get its tasks without importing Flask or the web process's package."""
    probe = (
        "import json, sys\n"
        "from celery.app.utils import find_app\n"
        "app = find_app('tasks')\n"
        "app.loader.import_default_modules()\n"
        "print(json.dumps({'main': app.main,\n"
        "  'tasks': sorted(t for t in app.tasks if t.startswith('gateframes.')),\n"
        "  'imported': sorted(m for m in ('flask', 'webhooks') if m in sys.modules)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LOG_FORMAT": "json"},
        check=True,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    # Every task name the producers queue by (common.task_names) has its task in the worker.
    names = sorted(v for k, v in vars(task_names).items() if k.isupper() and isinstance(v, str))
    assert found == {"main": APP_NAME, "tasks": names, "imported": []}
