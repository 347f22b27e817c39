"""The migrations build exactly the schema of tables.py, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from facelens.adapters.store.migrate import current_head, current_revision, upgrade
from facelens.adapters.store.sql_store import open_store
from facelens.adapters.store.tables import metadata


def schema_diff(connection: sa.Connection, target: sa.MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, target))


async def diff_against(database_url: str, target: sa.MetaData) -> list[Any]:
    store = await open_store(database_url)
    try:
        async with store.engine.connect() as conn:
            return await conn.run_sync(schema_diff, target)
    finally:
        await store.close()


async def test_upgrade_from_empty_matches_tables(empty_database_url: str) -> None:
    assert await current_revision(empty_database_url) is None
    await upgrade(empty_database_url)
    assert await current_revision(empty_database_url) == current_head()
    assert await diff_against(empty_database_url, metadata) == []


async def test_the_comparison_is_not_vacuous(empty_database_url: str) -> None:
    """A schema that differs from the database is reported (so [] above means equal)."""
    await upgrade(empty_database_url)
    changed = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    sa.Table("extra", changed, sa.Column("id", sa.Integer, primary_key=True))
    changed.tables["tasks"].append_column(sa.Column("surprise", sa.Integer))
    diff = await diff_against(empty_database_url, changed)
    assert {entry[0] for entry in diff if isinstance(entry, tuple)} >= {"add_table", "add_column"}


async def test_concurrent_upgrades_are_safe_and_idempotent(empty_database_url: str) -> None:
    """Several nodes may run `db upgrade` on start at the same time."""
    await asyncio.gather(*(upgrade(empty_database_url) for _ in range(3)))
    await upgrade(empty_database_url)
    assert await current_revision(empty_database_url) == current_head()
    assert await diff_against(empty_database_url, metadata) == []


def constraint_names(connection: sa.Connection) -> dict[str, set[str]]:
    """Names of every constraint and index, per kind, as the database has them.

    compare_metadata ignores CHECK constraints and most names; a migration must still
    create them under the names tables.py derives, or a later migration cannot refer
    to them by name on both databases.
    """
    inspector = sa.inspect(connection)
    names: dict[str, set[str]] = {"pk": set(), "fk": set(), "uq": set(), "ck": set(), "ix": set()}
    for table in metadata.tables:
        names["pk"].add(str(inspector.get_pk_constraint(table)["name"]))
        names["fk"].update(str(fk["name"]) for fk in inspector.get_foreign_keys(table))
        names["uq"].update(str(uq["name"]) for uq in inspector.get_unique_constraints(table))
        names["ck"].update(str(ck["name"]) for ck in inspector.get_check_constraints(table))
        names["ix"].update(
            str(ix["name"])
            for ix in inspector.get_indexes(table)
            if not ix.get("duplicates_constraint")
        )
    return names


def declared_names() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {"pk": set(), "fk": set(), "uq": set(), "ck": set(), "ix": set()}
    kinds = {
        sa.PrimaryKeyConstraint: "pk",
        sa.ForeignKeyConstraint: "fk",
        sa.UniqueConstraint: "uq",
        sa.CheckConstraint: "ck",
    }
    for table in metadata.tables.values():
        for constraint in table.constraints:
            names[kinds[type(constraint)]].add(str(constraint.name))
        names["ix"].update(str(index.name) for index in table.indexes)
    return names


async def test_constraint_and_index_names_match_tables(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    store = await open_store(empty_database_url)
    try:
        async with store.engine.connect() as conn:
            assert await conn.run_sync(constraint_names) == declared_names()
    finally:
        await store.close()
