"""The Celery worker: ``celery -A tasks worker``.

The Celery app is created by the Flask app factory (pallets' ``celery_init_app`` pattern) so
tasks run inside an app context; task modules are listed in celeryconfig ``imports``.
"""

from webhooks import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
