"""The worker's Celery app: ``celery -A tasks worker`` looks up ``tasks.celery.app``.

Importing this module is what makes a process a worker (in the manner of pallets'
``make_celery.py``): it sets up the worker's logging and creates the app; celeryconfig's
``imports`` loads the task modules. Importing a helper such as ``tasks.parsing`` builds nothing.
"""

from common.celery_app import celery_init_app
from common.config import get_config
from common.logs import configure_logging

# Before the worker configures logging: Celery then finds the root logger set up and keeps it.
configure_logging(get_config(), "worker")
app = celery_init_app()
