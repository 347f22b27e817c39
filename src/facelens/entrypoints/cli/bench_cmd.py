"""`facelens bench`: the service measured end to end, next to the bare detector.

A plain function with typer annotations; the CLI module registers it lazily. The work
is in `facelens.entrypoints.benchmark` (phases in `run.py`), imported when it runs.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

DEV_PHOTOS = (
    Path(__file__).resolve().parents[4] / ".." / "shared" / "eval" / "widerface-dev" / "WIDER_val"
)
"""The development photos beside a source checkout (194 WIDER FACE val images)."""


def bench(
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            help="Folder of images (searched recursively) [default: the dev photos].",
            show_default=False,
        ),
    ] = None,
    count: Annotated[int, typer.Option("-n", "--count", min=0, help="Images (0: all).")] = 0,
    mode: Annotated[
        str, typer.Option("--mode", help="Detection mode: fast, balanced or accurate.")
    ] = "balanced",
    idle: Annotated[
        int, typer.Option("--idle", min=0, help="Single tasks sent to the idle service.")
    ] = 10,
    failing: Annotated[
        int, typer.Option("--failing", min=0, help="Tasks in the failing burst (0: none).")
    ] = 300,
    bare: Annotated[
        bool, typer.Option("--bare/--no-bare", help="Also time the bare detector.")
    ] = True,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="A running service on this machine (loopback callbacks) instead."
        ),
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="Its API key (with --url).")] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Database of the spawned service [temp SQLite]."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            metavar="OUT.txt",
            help="py-spy the spawned service during the burst phases (raw stacks).",
        ),
    ] = None,
) -> None:
    """Measure the service end to end next to the bare detector.

    A real `serve` process (API, worker, dispatcher on SQLite in a temp dir, or --url),
    a loopback image server and callback receiver, N images in one mode.

    Prints images/s, submit->complete p50/p95 (burst and idle), the service's CPU per
    task outside inference, the same images through the bare detector with the ratio,
    and how fast a burst of tasks whose images fail at once drains. Run it on a quiet
    machine; the report includes `uptime` before and after."""
    from facelens.entrypoints.benchmark.run import BenchConfig, find_images, run_bench

    err = Console(stderr=True)
    folder = images or DEV_PHOTOS
    if not folder.is_dir():
        err.print(f"[red]no image folder at {folder}[/red] (give one with --images)")
        raise typer.Exit(2)
    files = find_images(folder, count)
    if not files:
        err.print(f"[red]no images under {folder}[/red]")
        raise typer.Exit(2)
    if url and not key:
        err.print("[red]--url needs --key[/red]")
        raise typer.Exit(2)
    config = BenchConfig(
        images=files,
        mode=mode,
        idle=idle,
        failing=failing,
        bare=bare,
        url=url,
        key=key,
        database_url=database_url,
        profile=profile,
    )
    err.print(f"facelens bench: {len(files)} images, mode {mode} ...")
    report = asyncio.run(run_bench(config))
    if json_out:
        print(json.dumps(report, indent=2))
    else:
        Console().print(render(report))


def _f(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(report: dict[str, Any]) -> Table:
    table = Table(
        title=f"facelens bench: {report['images']} images, mode {report['mode']}",
        caption=f"before: {report['load_before']}\nafter:  {report['load_after']}",
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    service, bare = report["service"], report.get("bare")
    idle, failing = report["idle"], report.get("failing_burst")
    rows = [
        ("service images/s", _f(service["images_per_s"], 2)),
        ("bare detector images/s", _f(bare and bare["images_per_s"], 2)),
        ("ratio service / bare", _f(report.get("ratio"), 3)),
        (
            "burst submit->complete p50 / p95 ms",
            f"{_f(service['p50_ms'], 0)} / {_f(service['p95_ms'], 0)}",
        ),
        ("service CPU ms per task", _f(service["cpu_ms_per_task"])),
        ("bare CPU ms per image", _f(bare and bare["cpu_ms_per_image"])),
        ("CPU ms per task outside inference", _f(service["cpu_ms_per_task_outside_inference"])),
        ("  of which on the event loop thread", _f(service["event_loop_cpu_ms_per_task"])),
        ("failed tasks (of the images)", str(service["failed"])),
        ("idle p50 / p95 ms", f"{_f(idle['p50_ms'], 0)} / {_f(idle['p95_ms'], 0)}"),
        ("idle: bare detect p50 ms", _f(idle["detect_p50_ms"], 0)),
        ("idle: latency - detect, p50 ms", _f(idle["overhead_p50_ms"], 0)),
    ]
    if failing:
        rows.append(
            (f"failing burst ({failing['tasks']} tasks) tasks/s", _f(failing["tasks_per_s"]))
        )
        rows.append(("failing burst CPU ms per task", _f(failing["cpu_ms_per_task"], 2)))
    for name, value in rows:
        table.add_row(name, value)
    return table
