"""The engine and sessions, and whether the schema is migrated.

One engine per process (per PID: a Celery prefork child must not share its parent's
connections). SQLite runs in WAL mode with a busy timeout, so the worker's writes and the
console's reads do not block each other.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from common.config import get_config

log = logging.getLogger(__name__)
# Alembic says "Context impl …" at INFO on every schema check; only its problems belong in logs.
logging.getLogger("alembic").setLevel(logging.WARNING)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE = Path("var") / "gateframes.db"
ALEMBIC_INI = ROOT / "alembic.ini"
#: How long a schema check is trusted before it is made again (a migration may land meanwhile).
SCHEMA_RECHECK_SECONDS = 30.0


def database_url(configured: str | None = None) -> str:
    """``DATABASE_URL`` as SQLAlchemy takes it (already normalised by the config), or the
    default SQLite file ``var/gateframes.db`` in the working directory."""
    url = get_config().database_url if configured is None else configured
    if url:
        return url
    return "sqlite:///" + str((Path.cwd() / DEFAULT_SQLITE).resolve())


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite's file and folder are created, WAL on."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 5})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 5}
    )


@functools.cache
def _engine_for(url: str, pid: int) -> Engine:
    return make_engine(url)


def get_engine() -> Engine:
    """This process's engine on ``DATABASE_URL``."""
    return _engine_for(database_url(), os.getpid())


@functools.cache
def _sessions(url: str, pid: int) -> sessionmaker[Session]:
    return sessionmaker(_engine_for(url, pid), expire_on_commit=False)


@contextmanager
def session() -> Iterator[Session]:
    """A session in one transaction: committed when the block ends, rolled back on error."""
    factory = _sessions(database_url(), os.getpid())
    with factory() as s, s.begin():
        yield s


# -- the schema -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str | None

    @property
    def ready(self) -> bool:
        return self.current is not None and self.current == self.head

    def problem(self) -> str:
        """What an operator reads when the schema is not ready."""
        if self.current is None:
            return "the database has no schema: run `python -m store migrate`"
        return (
            f"the database schema is at {self.current}, this code needs {self.head}: "
            "run `python -m store migrate`"
        )


def alembic_config(url: str | None = None):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["database_url"] = url or database_url()
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def schema(engine: Engine | None = None) -> SchemaState:
    """The schema's revision against the code's head (raises if the database is unreachable)."""
    from alembic.runtime.migration import MigrationContext

    with (engine or get_engine()).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaState(current, head_revision())


def migrate(url: str | None = None) -> SchemaState:
    """Bring the schema at ``url`` (default ``DATABASE_URL``) to the head revision."""
    from alembic import command

    target = url or database_url()
    command.upgrade(alembic_config(target), "head")
    engine = make_engine(target)
    try:
        return schema(engine)
    finally:
        engine.dispose()


_ready_lock = threading.Lock()
_ready: dict[int, tuple[float, bool]] = {}


def ready() -> bool:
    """Whether this process may use the log now (schema migrated, database reachable); the
    answer is kept :data:`SCHEMA_RECHECK_SECONDS`, and a change is logged once."""
    pid, now = os.getpid(), time.monotonic()
    with _ready_lock:
        checked = _ready.get(pid)
        if checked is not None and now - checked[0] < SCHEMA_RECHECK_SECONDS:
            return checked[1]
        try:
            state = schema()
            ok, problem = state.ready, state.problem()
        except Exception as exc:
            ok, problem = False, f"the database is unreachable: {type(exc).__name__}"
        if not ok and (checked is None or checked[1]):
            log.error("call and text log unavailable: %s", problem, extra={"outcome": "no_log"})
        elif ok and checked is not None and not checked[1]:
            log.info("call and text log available again")
        _ready[pid] = (now, ok)
        return ok


def forget_readiness() -> None:
    """Check the schema again at the next :func:`ready` (after ``migrate`` in this process)."""
    with _ready_lock:
        _ready.clear()
