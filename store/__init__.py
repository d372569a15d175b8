"""The call and text log: SQLAlchemy models, the engine, writes (the worker's), reads (the
staff console's), retention, and ``python -m store`` (migrate, check, purge, erase).

PostgreSQL on the PaaS (``DATABASE_URL``), a SQLite file under ``var/`` otherwise. The schema
is Alembic's (``migrations/``); a process finding it unmigrated says so (:func:`store.db.schema`).
"""
