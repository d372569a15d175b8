"""Alembic's environment: the URL comes from ``DATABASE_URL`` (via :mod:`store.db`), or from
the caller (``store.db.migrate`` passes it in ``config.attributes``)."""

from __future__ import annotations

from alembic import context

from store.db import database_url, make_engine
from store.models import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    context.configure(
        url=config.attributes.get("database_url") or database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(config.attributes.get("database_url") or database_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
