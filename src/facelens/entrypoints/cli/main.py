"""`facelens`: serve, work, administer accounts, detect locally, evaluate, benchmark.

Each command builds its settings from the environment (`FACELENS_*`) when it runs and
calls the async core through `asyncio.run`; nothing happens at import. The commands
that detect (`LAZY_COMMANDS`) live in modules that load the inference stack (ONNX
Runtime, NumPy, Pillow): they are imported only when one of them runs, so the admin
commands and `facelens --help` stay light.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from facelens.entrypoints.cli.lazy import LazyCommand, LazyGroup
from facelens.entrypoints.config import ENV_PREFIX, Settings, load_settings, settings_help

LAZY_COMMANDS = {
    "detect": LazyCommand(
        "facelens.entrypoints.cli.detect_cmds:detect",
        "Detect faces in local image files: a table per image, or JSON with --json.",
    ),
    "workers": LazyCommand(
        "facelens.entrypoints.cli.ops_cmds:workers",
        "Live worker processes (recent heartbeat): id, host, since, tasks done, last seen.",
    ),
    "eval": LazyCommand(
        "facelens.entrypoints.cli.detect_cmds:evaluate",
        "AP easy/medium/hard (official WIDER FACE protocol) and speed on a local dataset.",
    ),
    "bench": LazyCommand(
        "facelens.entrypoints.cli.bench_cmd:bench",
        "Measure the service end to end next to the bare detector.",
    ),
}
"""Commands imported only when they run. A new command that loads the inference
stack (or any heavy package) is declared here instead of with `@app.command`."""


class Commands(LazyGroup):
    lazy = LAZY_COMMANDS


app = typer.Typer(
    cls=Commands,
    help="facelens: self-hosted face detection, wire-compatible with the hosted API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts (each has credits, keys and a webhook secret).")
keys_app = typer.Typer(help="API keys (shown once, stored as hashes).", no_args_is_help=True)
credits_app = typer.Typer(help="Credits.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(credits_app, name="credits")

err = Console(stderr=True)
SETTINGS_EPILOG = "Settings (environment variables):\n\n" + settings_help().replace("\n", "\n\n")


def _settings(**overrides: object) -> Settings:
    return load_settings(os.environ, **{k: v for k, v in overrides.items() if v is not None})


def configure_logging(settings: Settings) -> None:
    """Text or JSON lines on stderr (FACELENS_LOG_FORMAT), see entrypoints/logs.py."""
    from facelens.entrypoints.logs import configure_logging as configure

    configure(settings.log_level, settings.log_format)


@app.command(epilog=SETTINGS_EPILOG)
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [FACELENS_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [FACELENS_PORT].")] = None,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Also run the worker and dispatcher.")
    ] = True,
) -> None:
    """Run the HTTP API (and, by default, the worker and callback dispatcher) in one process.

    On SQLite the schema is migrated first. On an empty database a default account is
    created and its API key printed once."""
    import uvicorn

    from facelens.entrypoints.api.app import create_app

    settings = _settings(host=host, port=port)
    configure_logging(settings)
    if not settings.metrics_token and settings.host not in ("127.0.0.1", "::1", "localhost"):
        logging.getLogger("facelens").warning(
            "/metrics is open to anyone who reaches %s: set FACELENS_METRICS_TOKEN", settings.host
        )
    asyncio.run(_prepare(settings))
    uvicorn.run(
        create_app(settings, with_worker=worker),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        log_config=None,  # uvicorn's lines go through ours (text or JSON, scrubbed)
    )


async def _prepare(settings: Settings) -> None:
    from facelens.core.errors import StoreUnavailable
    from facelens.entrypoints.admin import ensure_default_account, upgrade_schema

    sqlite = settings.resolved_database_url.startswith("sqlite")
    if sqlite:
        await upgrade_schema(settings)
    try:
        created = await ensure_default_account(settings)
    except StoreUnavailable as exc:
        if sqlite:
            raise
        # An API node started during a database outage serves anyway, like one that was
        # running: 100099 (HTTP 503) and /readyz "unreachable" until the database is back.
        logging.getLogger("facelens").warning(
            "database unreachable at startup (%s); serving, /readyz reports it", exc
        )
        return
    if created is not None:
        err.print(
            f"[bold]Created account 'default' (id {created.account.id}) with "
            f"{created.account.credits} credits. Its API key, shown only this once:[/bold]"
        )
        print(created.api_key, flush=True)


@app.command(epilog=SETTINGS_EPILOG)
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Tasks in flight [FACELENS_WORKER_CONCURRENCY].")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve /metrics on this port [FACELENS_METRICS_PORT] (default off)."),
    ] = None,
) -> None:
    """Run a worker and callback dispatcher without HTTP (scale-out nodes).

    Stops gracefully on SIGTERM/SIGINT: no new claims, in-flight tasks finish or are
    released within the grace period, exit status 0."""
    settings = _settings(worker_concurrency=concurrency, metrics_port=metrics_port)
    configure_logging(settings)
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from facelens.entrypoints.bootstrap import open_services
    from facelens.entrypoints.metrics_server import serve_metrics

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with (
        open_services(settings, with_worker=True, role="worker") as services,
        serve_metrics(services.metrics, settings),
    ):
        logging.getLogger("facelens").info("worker started")
        await services.run_background(stop)
    logging.getLogger("facelens").info("worker stopped")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database schema to the newest revision (SQLite or PostgreSQL)."""
    from facelens.entrypoints.admin import upgrade_schema

    settings = _settings()
    asyncio.run(upgrade_schema(settings))
    err.print("database schema is up to date")


@db_app.command("purge")
def db_purge(
    older_than: Annotated[
        float, typer.Option("--older-than", metavar="DAYS", min=0, help="Age in days.")
    ],
    batch: Annotated[int, typer.Option(min=1, help="Tasks per transaction.")] = 200,
) -> None:
    """Delete finished tasks that ended more than DAYS ago, with their callbacks and
    results, now (FACELENS_RETENTION_DAYS does it in the background); the ledger stays."""
    from facelens.entrypoints.cli.purge_cmd import db_purge as purge

    purge(older_than, batch)


@accounts_app.command("create")
def accounts_create(
    name: str,
    credits: Annotated[int, typer.Option(help="Starting credits.", min=0)] = 0,
) -> None:
    """Create an account; prints ONLY its new API key on stdout (capture it in scripts)."""
    from facelens.entrypoints.admin import create_account

    created = asyncio.run(create_account(_settings(), name, credits))
    err.print(f"account {created.account.id} '{name}' created with {credits} credits")
    print(created.api_key)


@accounts_app.command("list")
def accounts_list() -> None:
    """Accounts with their balances."""
    from facelens.entrypoints.admin import list_accounts

    table = Table("id", "name", "credits", "keys")
    for account, keys in asyncio.run(list_accounts(_settings())):
        live = [k.prefix + "…" for k in keys if k.revoked_at_ms is None]
        table.add_row(str(account.id), account.name, str(account.credits), ", ".join(live))
    Console().print(table)


@keys_app.command("create")
def keys_create(account: Annotated[str, typer.Argument(help="Account id or name.")]) -> None:
    """A new API key for an account; prints only the key."""
    from facelens.entrypoints.admin import create_key

    print(asyncio.run(create_key(_settings(), account)))


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key or its printed prefix.")]) -> None:
    """Revoke a key at once."""
    from facelens.entrypoints.admin import revoke_key

    if not asyncio.run(revoke_key(_settings(), key)):
        err.print("no live key with that prefix")
        raise typer.Exit(1)
    err.print("key revoked")


# ignore_unknown_options: `credits add acme -5` is an amount, not an unknown option.
@credits_app.command("add", context_settings={"ignore_unknown_options": True})
def credits_add(
    account: Annotated[str, typer.Argument(help="Account id or name.")],
    amount: Annotated[int, typer.Argument(help="Credits to add (negative to remove).")],
) -> None:
    """Add credits (a ledger entry); prints the new balance."""
    from facelens.entrypoints.admin import add_credits

    print(asyncio.run(add_credits(_settings(), account, amount)))


def main() -> None:
    from facelens.core.errors import InsufficientCredits, NotFound, StoreUnavailable

    try:
        app()
    except (StoreUnavailable, NotFound, InsufficientCredits) as exc:
        # An operator's mistake (an unknown account, a debit past the balance) or an
        # outage, not a bug: one line, no traceback.
        print(f"facelens: {exc}", file=sys.stderr)
        sys.exit(1)
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        for error in exc.errors():  # a FACELENS_* typo: name it, no traceback
            name = ENV_PREFIX + str(error["loc"][0]).upper() if error["loc"] else "?"
            print(
                f"facelens: invalid setting {name}={error['input']!r}: {error['msg']}",
                file=sys.stderr,
            )
        sys.exit(2)
