"""Wiring: settings in, adapters and use cases out. The only place that picks adapters.

`open_services` is an async context manager so every resource (database pool, HTTP
client, model session) is created on entry and closed on exit, never at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from facelens import __version__
from facelens.adapters.detection.attributes import ATTRIBUTE_NAMES, landmark_choices
from facelens.adapters.detection.backends import resolve_backend
from facelens.adapters.detection.factory import build_detector, describe
from facelens.adapters.detection.modes import MODES
from facelens.adapters.detection.weights import DEFAULT_MODEL
from facelens.adapters.http import SafeHttp
from facelens.adapters.images import PillowDecoder
from facelens.adapters.metrics import Metrics, ProcessInfo
from facelens.adapters.store.engine import is_postgres
from facelens.adapters.store.pg_notify import NotifyListener
from facelens.adapters.store.sql_store import SqlStore, open_store
from facelens.adapters.store.tasks import TASKS_CHANNEL
from facelens.adapters.video import DecodeLimits, VideoDecoder
from facelens.adapters.video.download import VideoDownloads
from facelens.application.accounts import AccountAdmin
from facelens.application.clock import SystemClock
from facelens.application.dispatcher import Dispatcher, DispatcherConfig
from facelens.application.heartbeat import Heartbeat, Identity
from facelens.application.instant import InstantDetection
from facelens.application.intake import IntakeRules
from facelens.application.options import OptionRules
from facelens.application.pipeline import ImagePipeline
from facelens.application.ports import Clock, Detector, Store
from facelens.application.retention import Retention, RetentionConfig
from facelens.application.service import TaskService
from facelens.application.telemetry import OpsStore, Telemetry
from facelens.application.video_tasks import VideoConfig, VideoTasks
from facelens.application.worker import Worker, WorkerConfig
from facelens.core.netpolicy import AddressPolicy, validate_url
from facelens.entrypoints.config import Settings

log = logging.getLogger("facelens")


@dataclass(slots=True)
class Services:
    """One process's wired parts: the store, the use cases the entrypoints call, and the
    background loops (worker, dispatcher, listener) when this process runs them."""

    settings: Settings
    store: Store
    clock: Clock
    pipeline: ImagePipeline
    tasks: TaskService
    instant: InstantDetection
    accounts: AccountAdmin
    worker: Worker | None
    dispatcher: Dispatcher | None
    listener: NotifyListener | None = None
    """PostgreSQL: wakes the worker when any process submits (LISTEN facelens_tasks)."""
    video: VideoTasks | None = None
    """Video tasks; with a worker, this process also analyses any task's segments."""
    metrics: Metrics | None = None
    """This process's Prometheus metrics (its own registry); see adapters/metrics.py."""
    heartbeat: Heartbeat | None = None
    """Records this process's worker in the database while it runs."""
    ops: OpsStore | None = None
    """The store's operations side (queue gauges, worker heartbeats)."""
    retention: Retention | None = None
    """Purges finished tasks older than FACELENS_RETENTION_DAYS (worker processes)."""
    detector: tuple[str, str] = ("", "")
    """The models the detector runs and its mode, as /readyz and metrics name them."""

    async def run_background(self, stop: asyncio.Event) -> None:
        """Run the worker and the dispatcher until `stop` is set (graceful). The
        dispatcher stops only once the worker has drained (finished or released its
        tasks), and then sends what is due one last time: the complete callbacks of
        tasks finished during the grace period go out before the process exits."""
        drained = asyncio.Event() if self.worker is not None else stop

        async def work(worker: Worker) -> None:
            try:
                if self.video is None:
                    await worker.run(stop)
                else:  # drained once segments are finished too, or cut and released
                    await asyncio.gather(worker.run(stop), self.video.run_segments(stop))
                    await self.video.release_held()
            finally:
                drained.set()

        loops = [work(self.worker)] if self.worker is not None else []
        if self.dispatcher is not None:
            loops.append(self.dispatcher.run(drained))
        if self.listener is not None:
            loops.append(self.listener.run(stop))
        if self.heartbeat is not None:
            loops.append(self.heartbeat.run(stop))
        if self.retention is not None:
            loops.append(self.retention.run(stop))
        await asyncio.gather(*loops)


def process_id(role: str) -> str:
    """A readable, unique id for leases: role@host:pid."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def option_rules() -> OptionRules:
    """The option values the detectors of this install answer, from the adapters'
    registries (attributes, landmark kinds, modes)."""
    return OptionRules(
        landmark_modes=landmark_choices(), attributes=ATTRIBUTE_NAMES, modes=frozenset(MODES)
    )


def process_metrics(settings: Settings, detector: Detector, role: str) -> Metrics:
    """A fresh registry for this process, describing the detector it runs."""
    metrics = Metrics(
        ProcessInfo(version=__version__, role=role),
        worker_slots=settings.worker_concurrency if role != "api" else 0,
    )
    backend = settings.detect_backend
    if backend == "auto":
        with contextlib.suppress(Exception):  # a label only: never fail a start for it
            backend = resolve_backend(None)
    models, mode = describe(detector)
    metrics.describe_model(models, backend, mode)
    return metrics


def video_tasks(
    settings: Settings,
    store: SqlStore,
    http: SafeHttp,
    pipeline: ImagePipeline,
    clock: Clock,
    telemetry: Telemetry,
) -> VideoTasks:
    """The video flow: downloads under the data dir (leftovers of killed workers swept
    now), the sandboxed decoder and its limits, detection through the image pipeline."""
    downloads = VideoDownloads(
        http,
        settings.data_dir / "video-tmp",
        max_bytes=settings.max_video_bytes,
        total_timeout=settings.video_download_timeout,
    )
    downloads.sweep()
    decoder = VideoDecoder(
        DecodeLimits(
            max_pixels=settings.max_image_pixels,
            max_seconds=settings.max_video_seconds,
            memory_bytes=settings.video_decode_memory_mb << 20,
            cpu_seconds=settings.video_decode_cpu_seconds,
            stall_seconds=settings.video_decode_stall_seconds,
        )
    )
    config = VideoConfig(
        worker_id=process_id("worker"),
        segment_ms=round(settings.video_segment_seconds * 1000),
        lease_ms=int(settings.lease_seconds * 1000),
        poll_interval_s=settings.poll_interval,
        stop_grace_s=settings.stop_grace_seconds,
        max_analyses=settings.inference_parallelism,
    )
    return VideoTasks(store, downloads, decoder, pipeline.detect, clock, config, telemetry)


def build_detector_for(settings: Settings) -> Detector:
    custom_model = settings.model != DEFAULT_MODEL
    return build_detector(
        settings.model,
        threads=settings.detect_threads,
        score_threshold=settings.score_threshold,
        mode=None if custom_model else settings.detect_mode,
        backend=None if settings.detect_backend == "auto" else settings.detect_backend,
    )


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    with_worker: bool = True,
    clock: Clock | None = None,
    detector: Detector | None = None,
    role: str | None = None,
) -> AsyncIterator[Services]:
    """`role` names the process in `facelens_build_info` (default: serve, or api
    without a worker)."""
    clock = clock or SystemClock()
    url = settings.resolved_database_url
    store = await open_store(url, notify=settings.listen_notify)
    # PostgreSQL workers get their own pool without pre-ping (see engine.create_engine:
    # a round trip per queue transaction); the API keeps pre-ping on `store`.
    postgres = is_postgres(store.engine)
    work_store: SqlStore = (
        await open_store(url, notify=settings.listen_notify, pre_ping=False)
        if with_worker and postgres
        else store
    )
    policy = AddressPolicy(allow_private=settings.allow_private_urls, allowlist=settings.allowlist)
    http = SafeHttp(
        policy,
        max_image_bytes=settings.max_image_bytes,
        connect_timeout=settings.fetch_connect_timeout,
        read_timeout=settings.fetch_read_timeout,
        total_timeout=settings.fetch_total_timeout,
        max_concurrent_fetches=settings.max_concurrent_fetches,
        callback_timeout=settings.callback_timeout,
    )
    try:
        if detector is None:
            detector = await asyncio.to_thread(build_detector_for, settings)
        metrics = process_metrics(settings, detector, role or ("serve" if with_worker else "api"))
        metrics.watch_queue(store, live_window_s=settings.worker_live_seconds)
        pipeline = ImagePipeline(
            http,
            PillowDecoder(max_pixels=settings.max_image_pixels),
            detector,
            max_parallel_inference=settings.inference_parallelism,
        )
        worker: Worker | None = None
        video: VideoTasks | None = None
        dispatcher: Dispatcher | None = None
        listener: NotifyListener | None = None
        heartbeat: Heartbeat | None = None
        if with_worker:
            dispatcher = Dispatcher(
                work_store,
                http,
                clock,
                DispatcherConfig(
                    dispatcher_id=process_id("dispatcher"),
                    schedule_s=settings.retry_delays,
                    concurrency=settings.dispatcher_concurrency,
                    lease_ms=int(settings.lease_seconds * 1000),
                    poll_interval_s=settings.poll_interval,
                ),
                telemetry=metrics,
            )
            video = video_tasks(settings, work_store, http, pipeline, clock, metrics)
            worker = Worker(
                work_store,
                pipeline,
                clock,
                WorkerConfig(
                    worker_id=process_id("worker"),
                    concurrency=settings.worker_concurrency,
                    lease_ms=int(settings.lease_seconds * 1000),
                    poll_interval_s=settings.poll_interval,
                    refund_failed=settings.refund_failed,
                    stop_grace_s=settings.stop_grace_seconds,
                ),
                on_finished=dispatcher.wake,
                video=video,
                telemetry=metrics,
            )
            heartbeat = Heartbeat(
                work_store,
                clock,
                Identity.of_this_process(process_id("worker")),
                lambda: worker.reports.tasks_done if worker else 0,
                interval_s=settings.heartbeat_seconds,
            )
            if postgres and settings.listen_notify:
                listener = NotifyListener(url, {TASKS_CHANNEL: worker.wake})
        rules = IntakeRules(
            max_tasks=settings.max_tasks_per_request,
            max_video_frames=settings.max_video_frames,
            options=option_rules(),
            url_check=validate_url,
        )
        tasks = TaskService(
            store,
            clock,
            rules,
            on_submitted=worker.wake if worker else (lambda: None),
            telemetry=metrics,
        )
        yield Services(
            settings=settings,
            store=store,
            clock=clock,
            pipeline=pipeline,
            tasks=tasks,
            instant=InstantDetection(
                store, clock, pipeline, settings.refund_failed, telemetry=metrics
            ),
            accounts=AccountAdmin(store, clock),
            worker=worker,
            dispatcher=dispatcher,
            listener=listener,
            video=video,
            metrics=metrics,
            heartbeat=heartbeat,
            ops=store,
            retention=Retention(work_store, clock, RetentionConfig(settings.retention_days))
            if with_worker and settings.retention_days > 0
            else None,
            detector=describe(detector),
        )
    finally:
        await http.close()
        if work_store is not store:
            await work_store.close()
        await store.close()
