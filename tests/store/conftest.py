"""An empty, migrated log for each test, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store import db
from tests.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def log_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """This process's log points at a fresh database of the parametrized kind."""
    url = fresh_database(request.param, tmp_path)
    monkeypatch.setattr(db, "database_url", lambda configured=None: url)
    db.forget_readiness()
    yield url
    db.get_engine().dispose()
    db.forget_readiness()
