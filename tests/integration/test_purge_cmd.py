"""`facelens db purge --older-than DAYS` on a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from facelens.adapters.store.sql_store import open_store
from facelens.application.ports import TaskFinish
from facelens.core.callbacks import start_body
from facelens.core.domain import DeliveryAttempt, DetectOptions, NewTask, TaskOutcome
from facelens.entrypoints.cli.main import app

DAY_MS = 86_400_000


async def finished_tasks(url: str, ended_ms: list[int]) -> int:
    """One account, one finished task per entry of `ended_ms`; its id."""
    store = await open_store(url)
    try:
        account = await store.create_account("acme", 10, "whsec_x", 0)
        for n, ended in enumerate(ended_ms):
            tasks = [NewTask(f"https://img.example/{n}.jpg", {}, DetectOptions())]
            (task_id,) = await store.submit(account.id, f"c{n}", "https://cb.example/", tasks, 1)
            await store.claim_tasks("w", 1, 60_000, ended - 10, start_body)
            outcome = TaskOutcome(result_code=1, image_width=1, image_height=1, ended_at_ms=ended)
            await store.finish_tasks("w", [TaskFinish(task_id, outcome, "{}", False)], ended)
        # callbacks delivered (a task whose callback is still pending is never purged)
        while jobs := await store.claim_deliveries("d", 10, 10_000, ended_ms[-1]):
            for job in jobs:
                attempt = DeliveryAttempt(ended_ms[-1], 200, "", 1)
                await store.record_delivery_attempt(job.id, "d", attempt, True, None)
        return account.id
    finally:
        await store.close()


async def remaining(url: str, account_id: int) -> tuple[int, int, int]:
    """(tasks, balance, ledger sum) of the account."""
    store = await open_store(url)
    try:
        account = await store.get_account(account_id)
        assert account is not None
        async with store.engine.connect() as conn:
            tasks = await conn.scalar(sa.text("SELECT count(*) FROM tasks"))
        return int(tasks or 0), account.credits, await store.ledger_sum(account_id)
    finally:
        await store.close()


def test_db_purge_deletes_only_what_is_older_and_keeps_balances(tmp_path: Path) -> None:
    cli = CliRunner(env={"FACELENS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    assert cli.invoke(app, ["db", "upgrade"]).exit_code == 0
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'facelens.db'}"
    now = int(time.time() * 1000)
    account_id = asyncio.run(finished_tasks(url, [now - 90 * DAY_MS, now - 40 * DAY_MS, now]))

    result = cli.invoke(app, ["db", "purge", "--older-than", "60"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stdout.strip() == "1"
    assert asyncio.run(remaining(url, account_id)) == (2, 7, 7)

    result = cli.invoke(app, ["db", "purge", "--older-than", "30", "--batch", "1"])
    assert result.exit_code == 0 and result.stdout.strip() == "1"
    assert asyncio.run(remaining(url, account_id)) == (1, 7, 7)

    result = cli.invoke(app, ["db", "purge", "--older-than", "-1"])
    assert result.exit_code != 0  # a negative age is refused, nothing deleted
    assert asyncio.run(remaining(url, account_id)) == (1, 7, 7)
