"""WSGI entry for gunicorn (``gunicorn wsgi:app``): the web app with its spool drainer."""

from webhooks import create_app

app = create_app(start_drainer=True)
