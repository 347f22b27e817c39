"""One store contract suite, run against SQLite and PostgreSQL.

Every test that takes `store` (or `database_url`) runs twice:

* `sqlite`: a real database file under tmp_path, copied from a template file that was
  migrated once per session with `upgrade()`;
* `postgres`: the server on 127.0.0.1:5432 (user postgres, trust auth; override with
  FACELENS_TEST_PG_URL pointing at any existing database). A template database is
  migrated once per session; each test gets `CREATE DATABASE … TEMPLATE tmpl`, dropped
  afterwards. These tests are marked `postgres` (deselect with `-m "not postgres"`).

When PostgreSQL cannot be reached the postgres tests are skipped with the reason, except
when the environment variable CI is set: there they fail, so CI cannot go green
without having run the suite on PostgreSQL.

Database administration (CREATE/DROP DATABASE) runs on its own event loop in a helper
thread, so it never touches the loop pytest-asyncio gives each test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from facelens.adapters.store.migrate import upgrade
from facelens.adapters.store.sql_store import SqlStore, open_store
from facelens.core.domain import Account, DetectOptions, Face, NewTask, TaskOutcome

T = TypeVar("T")

PG_URL = os.environ.get("FACELENS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
"""An existing database to connect to for CREATE/DROP DATABASE."""

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def run_in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a fresh loop in another thread."""

    async def main() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def pg_url(database: str) -> str:
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


async def pg_admin(*statements: str) -> None:
    """Run statements outside a transaction (CREATE DATABASE needs that)."""
    engine = create_async_engine(
        PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"timeout": 5}
    )
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def pg_create(name: str, template: str) -> str:
    run_in_thread(lambda: pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return pg_url(name)


def pg_drop(name: str) -> None:
    run_in_thread(lambda: pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def unique_name(kind: str) -> str:
    return f"facelens_{kind}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgres_server() -> None:
    """Fails (CI) or skips (elsewhere) the postgres tests when the server is down."""
    try:
        run_in_thread(lambda: pg_admin("SELECT 1"))
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {make_url(PG_URL)!r}: {type(exc).__name__}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
        pytest.skip(
            f"{reason}; start it with: pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start"
        )


@pytest.fixture(scope="session")
def pg_template(postgres_server: None) -> Iterator[str]:
    """A database migrated to head, used as the template of every test's database."""
    name = unique_name("tmpl")
    run_in_thread(lambda: pg_admin(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    try:
        run_in_thread(lambda: upgrade(pg_url(name)))
        yield name
    finally:
        pg_drop(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "facelens.db"
    run_in_thread(lambda: upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of the test's backend."""
    if backend == "sqlite":
        path = tmp_path / "data" / "facelens.db"
        path.parent.mkdir()
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = unique_name("test")
    url = pg_create(name, template)
    try:
        yield url
    finally:
        pg_drop(name)


@pytest.fixture
def empty_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A fresh database of the test's backend with no schema at all."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty' / 'facelens.db'}"
        return
    request.getfixturevalue("postgres_server")
    name = unique_name("empty")
    url = pg_create(name, "template0")
    try:
        yield url
    finally:
        pg_drop(name)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    opened = await open_store(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def open_stores(
    database_url: str,
) -> AsyncIterator[Callable[[int], Awaitable[list[SqlStore]]]]:
    """Opens extra stores (own engine and pool each) on the same database, like more
    processes would; all are closed after the test."""
    opened: list[SqlStore] = []

    async def make(count: int) -> list[SqlStore]:
        more = [await open_store(database_url) for _ in range(count)]
        opened.extend(more)
        return more

    try:
        yield make
    finally:
        for each in opened:
            await each.close()


# Helpers shared by the test modules (imported from here).

WORKER_LEASE_MS = 30_000
T0 = 1_764_000_000_000
"""A realistic epoch-ms time: values past 2**31 catch 32-bit parameter bugs."""


def new_task(index: int = 0, **callback_params: object) -> NewTask:
    return NewTask(
        image_url=f"https://img.example/{index}.jpg",
        callback_params=dict(callback_params),
        options=DetectOptions(score_threshold=0.6, landmarks="5", attributes=("pose",)),
    )


async def new_account(store: SqlStore, credits: int = 100, name: str = "acme") -> Account:
    return await store.create_account(name, credits, f"whsec_{name}", now_ms=T0)


async def submit_tasks(
    store: SqlStore, account: Account, count: int, now_ms: int = T0 + 2_000, creation_id: str = ""
) -> list[int]:
    creation_id = creation_id or uuid.uuid4().hex
    return await store.submit(
        account.id,
        creation_id,
        "https://client.example/cb",
        [new_task(n, n=n) for n in range(count)],
        now_ms,
    )


def success(ended_at_ms: int) -> TaskOutcome:
    face = Face(x=10, y=20, width=30, height=40, score=0.99, landmarks={"nose": (25.0, 40.0)})
    return TaskOutcome(
        result_code=1, faces=(face,), image_width=640, image_height=480, ended_at_ms=ended_at_ms
    )


def failure(ended_at_ms: int) -> TaskOutcome:
    return TaskOutcome(
        result_code=-1,
        error_code="IMAGE_DOWNLOAD_FAILED",
        error_info="HTTP 404",
        ended_at_ms=ended_at_ms,
    )
