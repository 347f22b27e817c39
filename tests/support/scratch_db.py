"""A throw-away database at head for the bench scripts: a new PostgreSQL database
(dropped with FORCE afterwards) or a SQLite file in a temporary directory."""

from __future__ import annotations

import os
import tempfile
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from facelens.adapters.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "FACELENS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


async def _pg_admin(statement: str) -> None:
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


class ScratchDatabase:
    def __init__(self, kind: str, prefix: str) -> None:
        self.kind = kind
        self.prefix = prefix
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.url = ""

    async def create(self) -> str:
        if self.kind == "postgres":
            await _pg_admin(f'CREATE DATABASE "{self.name}" TEMPLATE template0')
            self.url = (
                sa.engine.make_url(PG_ADMIN_URL)
                .set(database=self.name)
                .render_as_string(hide_password=False)
            )
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"{self.prefix}-")
            self.url = f"sqlite+aiosqlite:///{self._tmp.name}/facelens.db"
        await upgrade(self.url)
        return self.url

    async def drop(self) -> None:
        if self.kind == "postgres":
            await _pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        elif self._tmp is not None:
            self._tmp.cleanup()
