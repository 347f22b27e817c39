"""The benchmark's phases, in the order that keeps them from disturbing each other.

1. bare: the same images through the bare decoder and detector in this process,
   before the service starts (nothing else of ours runs): images/s, per-image ms and
   CPU per image. This is the ceiling the service is compared with.
2. the service (spawned, or given by URL) is warmed up with two tasks;
3. idle: single tasks one after another, each submitted once the previous complete
   callback arrived: submit->complete latency of an idle service, per image compared
   with the bare time of the same image (the service's own latency);
4. throughput: all images submitted at once (submissions of up to 100 tasks):
   images/s = N / (last complete callback - first submit), submit->complete p50/p95,
   and the service process's CPU per task, minus the bare CPU per image = the CPU the
   service spends outside inference (download, hand-off, transactions, callbacks, logs);
5. failing burst: tasks whose image URL answers 404 at once, submitted together:
   tasks/s until every complete callback arrived.

Every latency is from just before the submit request to the complete callback's
arrival: what a client sees. CPU is read from /proc for the service process only
(its PostgreSQL backends, when there are any, are not counted).
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facelens.entrypoints.benchmark.loopback import Loopback
from facelens.entrypoints.benchmark.service import (
    Target,
    cpu_seconds,
    spawned_service,
    submit,
    wait_ready,
)

CHUNK = 100
"""Tasks per submission (the default `FACELENS_MAX_TASKS_PER_REQUEST`)."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    images: Sequence[Path]
    mode: str = "balanced"
    idle: int = 10
    failing: int = 300
    bare: bool = True
    url: str | None = None
    key: str | None = None
    database_url: str | None = None
    timeout_s: float = 600.0
    profile: Path | None = None
    """Record the spawned service with py-spy (raw collapsed stacks) during the
    throughput and failing-burst phases."""


def find_images(folder: Path, count: int) -> list[Path]:
    """Image files under `folder` (recursively), sorted by path; the first `count`
    (0: all)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return files[:count] if count > 0 else files


def pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine_load() -> str:
    try:
        out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
        return out.strip()
    except OSError:
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def bare_run(data: Sequence[bytes], mode: str) -> dict[str, Any]:
    """Decode + detect every image in this thread, as the service's pipeline does,
    with the detector the service builds from the same settings. Two passes; the
    faster counts (other load on the machine only ever slows a pass down)."""
    from facelens.adapters.images import PillowDecoder
    from facelens.core.domain import DetectOptions
    from facelens.entrypoints.bootstrap import build_detector_for
    from facelens.entrypoints.config import load_settings

    settings = load_settings(os.environ, detect_mode=mode)
    detector = build_detector_for(settings)
    decoder = PillowDecoder(max_pixels=settings.max_image_pixels)
    options = DetectOptions()
    detector.detect(decoder.decode(data[0], "image/jpeg", None), options)  # warm-up
    passes = []
    for _ in range(2):
        per_image: list[float] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for blob in data:
            started = time.perf_counter()
            detector.detect(decoder.decode(blob, "image/jpeg", None), options)
            per_image.append((time.perf_counter() - started) * 1000)
        passes.append((time.perf_counter() - wall0, time.process_time() - cpu0, per_image))
    wall, cpu, per_image = min(passes, key=lambda p: p[0])
    del detector
    gc.collect()
    return {
        "images": len(data),
        "images_per_s": len(data) / wall,
        "ms_p50": pct(per_image, 0.5),
        "cpu_ms_per_image": cpu * 1000 / len(data),
        "per_image_ms": per_image,
    }


async def run_bench(config: BenchConfig) -> dict[str, Any]:
    data = [path.read_bytes() for path in config.images]
    report: dict[str, Any] = {
        "mode": config.mode,
        "images": len(data),
        "cpus": os.cpu_count(),
        "load_before": machine_load(),
    }
    bare = await asyncio.to_thread(bare_run, data, config.mode) if config.bare else None
    loopback = Loopback(data)
    await loopback.start()
    credits = 2 + config.idle + len(data) + config.failing + 10
    try:
        if config.url:
            if not config.key:
                raise ValueError("--url needs --key")
            target = Target(config.url.rstrip("/"), config.key)
            await wait_ready(target)
            report |= await _phases(config, target, loopback, data, bare)
        else:
            async with spawned_service(config.mode, credits, config.database_url) as target:
                report |= await _phases(config, target, loopback, data, bare)
    finally:
        await loopback.stop()
    report["load_after"] = machine_load()
    if bare is not None:
        bare.pop("per_image_ms")
        report["bare"] = bare
    return report


async def _phases(
    config: BenchConfig,
    target: Target,
    loopback: Loopback,
    data: Sequence[bytes],
    bare: dict[str, Any] | None,
) -> dict[str, Any]:
    callback = loopback.url("/cb")
    deadline = config.timeout_s
    warm = await submit(target, callback, [loopback.url(f"/img/{i % len(data)}") for i in (0, 1)])
    await loopback.wait_completed(warm, deadline)
    out: dict[str, Any] = {}
    # idle: one at a time
    latencies: list[float] = []
    overheads: list[float] = []
    for n in range(config.idle):
        index = n % len(data)
        await asyncio.sleep(0.05)
        sent = time.perf_counter()
        ids = await submit(target, callback, [loopback.url(f"/img/{index}")], first=n)
        await loopback.wait_completed(ids, deadline)
        took = (loopback.completed[ids[0]].arrived - sent) * 1000
        latencies.append(took)
        if bare is not None:
            overheads.append(took - bare["per_image_ms"][index])
    out["idle"] = {
        "samples": len(latencies),
        "p50_ms": pct(latencies, 0.5),
        "p95_ms": pct(latencies, 0.95),
        "detect_p50_ms": pct([bare["per_image_ms"][n % len(data)] for n in range(config.idle)], 0.5)
        if bare is not None
        else None,
        "overhead_p50_ms": pct(overheads, 0.5),
    }
    # throughput: everything at once
    profiler = start_profiler(target.pid, config.profile)
    cpu0 = cpu_seconds(target.pid) if target.pid else None
    loop0 = cpu_seconds(target.pid, main_thread=True) if target.pid else None
    ids, sent_at = await _burst(
        target, callback, [loopback.url(f"/img/{i}") for i in range(len(data))]
    )
    await loopback.wait_completed(ids, deadline)
    cpu = cpu_seconds(target.pid) - cpu0 if target.pid and cpu0 is not None else None
    loop_cpu = (
        cpu_seconds(target.pid, main_thread=True) - loop0
        if target.pid and loop0 is not None
        else None
    )
    arrived = [loopback.completed[task_id].arrived for task_id in ids]
    span = max(arrived) - min(sent_at)
    lat = [(a - s) * 1000 for a, s in zip(arrived, sent_at, strict=True)]
    failed = sum(1 for task_id in ids if loopback.completed[task_id].result_code != 1)
    service: dict[str, Any] = {
        "images_per_s": len(ids) / span,
        "p50_ms": pct(lat, 0.5),
        "p95_ms": pct(lat, 0.95),
        "failed": failed,
        "cpu_ms_per_task": cpu * 1000 / len(ids) if cpu is not None else None,
        "event_loop_cpu_ms_per_task": loop_cpu * 1000 / len(ids) if loop_cpu is not None else None,
        "cpu_ms_per_task_outside_inference": (
            cpu * 1000 / len(ids) - bare["cpu_ms_per_image"]
            if cpu is not None and bare is not None
            else None
        ),
    }
    out["service"] = service
    if bare is not None:
        out["ratio"] = service["images_per_s"] / bare["images_per_s"]
    stop_profiler(profiler)
    # failing burst
    if config.failing > 0:
        failing_profile = config.profile and config.profile.with_suffix(".failing.txt")
        profiler = start_profiler(target.pid, failing_profile)
        cpu0 = cpu_seconds(target.pid) if target.pid else None
        urls = [loopback.url(f"/fail/{i}") for i in range(config.failing)]
        failing_ids, failing_sent = await _burst(target, callback, urls)
        await loopback.wait_completed(failing_ids, deadline)
        cpu = cpu_seconds(target.pid) - cpu0 if target.pid and cpu0 is not None else None
        last = max(loopback.completed[task_id].arrived for task_id in failing_ids)
        out["failing_burst"] = {
            "tasks": len(failing_ids),
            "tasks_per_s": len(failing_ids) / (last - min(failing_sent)),
            "all_failed": all(loopback.completed[t].result_code == -1 for t in failing_ids),
            "cpu_ms_per_task": cpu * 1000 / len(failing_ids) if cpu is not None else None,
        }
        stop_profiler(profiler)
    return out


def start_profiler(pid: int | None, path: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy recording `pid` into `path` (raw collapsed stacks, 100 samples/s,
    nonblocking: the service is not paused to be sampled)."""
    if pid is None or path is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    args = ["--pid", str(pid), "--rate", "100", "--format", "raw", "--nonblocking"]
    return subprocess.Popen(
        [spy, "record", *args, "--output", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=30)


async def _burst(
    target: Target, callback: str, urls: Sequence[str]
) -> tuple[list[int], list[float]]:
    """Submit every URL at once, in submissions of CHUNK sent concurrently; the task
    ids and, per task, when its submission was sent."""

    async def one(start: int) -> tuple[list[int], float]:
        sent = time.perf_counter()
        ids = await submit(target, callback, urls[start : start + CHUNK], first=start)
        return ids, sent

    parts = await asyncio.gather(*(one(start) for start in range(0, len(urls), CHUNK)))
    ids = [task_id for part, _ in parts for task_id in part]
    sent_at = [sent for part, sent in parts for _ in part]
    return ids, sent_at
