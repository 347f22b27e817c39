"""Alembic environment for facelens, run by `facelens.adapters.store.migrate`.

There is no alembic.ini: `migrate.alembic_config()` builds the configuration in code.
Three ways in:

* `migrate.upgrade(url)` (the usual one) opens the connection itself, inside the
  transaction and lock it wants, and hands it over in `config.attributes["connection"]`;
* a config with `attributes["database_url"]` (or the `sqlalchemy.url` option), e.g.
  `alembic` commands driven from a script: an engine is made here, async, via run_sync;
* offline mode (`--sql`) renders the SQL for a URL without connecting.

SQLite cannot ALTER most things, so migrations run in batch mode there (Alembic
recreates the table); PostgreSQL ignores the flag.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from facelens.adapters.store.engine import create_engine, normalize_url
from facelens.adapters.store.tables import metadata

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: pass attributes['database_url']")
    return str(url)


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_on)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_offline() -> None:
    url = normalize_url(_url())
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif isinstance(given := config.attributes.get("connection"), Connection):
    run_on(given)
else:
    asyncio.run(_run_online())
