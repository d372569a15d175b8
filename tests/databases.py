"""The two databases the log runs on, for tests: a SQLite file and the machine's PostgreSQL
(127.0.0.1:5432, user postgres, trust auth; ``make test`` starts it and creates the database
named by GATEFRAMES_TEST_PG_DB, default ``gateframes_test``). Each use gets an empty,
migrated schema."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from store import db

BACKENDS = ("sqlite", "postgresql")
PG_DB = os.environ.get("GATEFRAMES_TEST_PG_DB", "gateframes_test")
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"


def fresh_database(backend: str, tmp_dir: Path) -> str:
    """The URL of an empty database of ``backend`` at the head revision."""
    if backend == "sqlite":
        path = tmp_dir / "gateframes-log.db"
        for leftover in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    elif backend == "postgresql":
        url = PG_URL
        engine = db.make_engine(url)
        try:
            with engine.begin() as conn:  # a clean slate: the schema is rebuilt by migrate
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        finally:
            engine.dispose()
    else:
        raise ValueError(backend)
    state = db.migrate(url)
    assert state.ready, state
    return url
