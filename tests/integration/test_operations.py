"""Operating facelens, on the real service: /metrics after real tasks (checked by
promtool), per-task timings, worker heartbeats in /readyz, and the log formats
(both written by real requests and tasks, never a signed URL's token or a key)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from facelens.application.telemetry import WorkerBeat
from facelens.entrypoints.api.app import create_app
from facelens.entrypoints.bootstrap import open_services
from facelens.entrypoints.logs import configure_logging
from tests.integration.conftest import (
    FACE_IMAGES,
    ImageHost,
    Service,
    StartService,
    assert_envelope,
    bearer,
    eventually,
    receiver,
)
from tests.ops.promtool import promtool

SIGNATURE = "X-Amz-Signature=SIGNEDSECRET123"
CALLBACK_TOKEN = "token=CALLBACKSECRET456"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(service: Service, token: str) -> str:
    response = await service.client.get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The process's logging, into a buffer (restored afterwards)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_metrics_move_with_real_tasks_and_pass_promtool(
    start_service: StartService, images: ImageHost
) -> None:
    service = await start_service(credits=10, metrics_token="s3cret")
    assert (await service.client.get("/metrics")).status_code == 401
    wrong = await service.client.get("/metrics", headers=bearer("nope"))
    assert wrong.status_code == 401
    before = samples(await scrape(service, "s3cret"))
    assert value(before, "facelens_stage_duration_seconds_count", stage="detect") == 0

    with receiver() as hooks:
        missing = images.add("/gone.jpg", _not_found())
        answer = await service.submit(
            [images.url(FACE_IMAGES[0]), images.url(FACE_IMAGES[1]), missing],
            hooks.url("/cb"),
        )
        ids = answer["data"]["task_id_list"]
        await eventually(lambda: service.tasks_settled(ids), 60, "three tasks settled")
        # a task view by id, so the route template shows up in the request counter
        ok, _, failed = [await service.task(task_id) for task_id in ids]
        assert (await service.client.get(f"/no/such/path/{ids[0]}")).status_code == 404

    text = await scrape(service, "s3cret")
    promtool("check", "metrics", stdin=text.encode())
    after = samples(text)
    assert value(after, "facelens_tasks_submitted_total") == 3
    assert value(after, "facelens_tasks_finished_total", result="succeeded", error_code="") == 2
    failed_labels = {"result": "failed", "error_code": "IMAGE_DOWNLOAD_FAILED"}
    assert value(after, "facelens_tasks_finished_total", **failed_labels) == 1
    for stage, count in (("detect", 2), ("decode", 2), ("fetch", 3), ("queue_wait", 3)):
        assert value(after, "facelens_stage_duration_seconds_count", stage=stage) == count, stage
    assert value(after, "facelens_stage_duration_seconds_count", stage="total") == 3
    assert value(after, "facelens_stage_duration_seconds_sum", stage="detect") > 0
    assert value(after, "facelens_stage_duration_seconds_count", stage="callback") >= 6
    for status in ("1", "2"):
        labels = {"process_status": status, "outcome": "delivered"}
        assert value(after, "facelens_callbacks_total", **labels) == 3
    assert value(after, "facelens_credits_total", kind="charged") == 3
    assert value(after, "facelens_credits_total", kind="refunded") == 1
    route = {"method": "GET", "route": "/api/aigc/task/{task_id}", "status": "200"}
    assert value(after, "facelens_http_requests_total", **route) >= 3
    routes = {dict(labels).get("route") for name, labels in after if "http_requests" in name}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "facelens_http_requests_total", **unmatched) == 1
    assert not any(str(task_id) in str(r) for r in routes for task_id in ids), routes
    assert value(after, "facelens_queue_depth", state="queued") == 0
    assert value(after, "facelens_oldest_queued_seconds") == 0

    async def live_workers() -> bool:  # this serve's own heartbeat (gauges cached 1 s)
        return value(samples(await scrape(service, "s3cret")), "facelens_workers_live") == 1

    await eventually(live_workers, 10, "facelens_workers_live 1")
    assert value(after, "facelens_worker_slots") == service.settings.worker_concurrency
    model = [labels for name, labels in after if name == "facelens_model_info"]
    # the weights by name and the preset apart (the default detector: balanced mode)
    assert model and dict(model[0])["model"] == "centerface", model
    assert dict(model[0])["mode"] == "balanced", model
    ready = (await service.client.get("/readyz")).json()["data"]
    assert (ready["model"], ready["mode"]) == ("centerface", "balanced"), ready

    # per-task timings, stored with the outcome
    timings = ok["timings"]
    assert set(timings) == {"queued_ms", "fetch_ms", "decode_ms", "detect_ms", "total_ms"}
    assert all(isinstance(v, int) and v >= 0 for v in timings.values()), timings
    assert timings["total_ms"] >= timings["fetch_ms"] + timings["decode_ms"] + timings["detect_ms"]
    assert failed["timings"]["fetch_ms"] is not None
    assert failed["timings"]["decode_ms"] is None and failed["timings"]["detect_ms"] is None


def _not_found() -> Any:
    from tests.support.servers import Reply

    return Reply(404, {"Content-Type": "text/plain"}, b"gone")


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_logs_name_request_task_and_account_and_never_a_secret(
    start_service: StartService, images: ImageHost, log_stream: io.StringIO, log_format: str
) -> None:
    configure_logging("info", log_format, log_stream)
    service = await start_service(credits=5)
    with receiver(lambda request: 500) as hooks:  # every callback attempt fails
        image = images.add("/signed.jpg", _not_found()) + "?" + SIGNATURE
        answer = await service.submit([image], hooks.url("/cb") + "?" + CALLBACK_TOKEN)
        (task_id,) = answer["data"]["task_id_list"]
        await eventually(
            lambda: len(hooks.requests) >= 2, 30, "a start and a complete callback attempt"
        )
        await eventually(
            lambda: "callback 2 attempt 1" in log_stream.getvalue(), 10, "the attempt logged"
        )
    logged = log_stream.getvalue()
    for secret in ("SIGNEDSECRET123", "CALLBACKSECRET456", service.api_key, "X-Amz", "token="):
        assert secret not in logged, secret
    account = service.account.id
    if log_format == "json":
        lines = [json.loads(line) for line in logged.splitlines()]
        submit = [e for e in lines if "POST /api/aigc/task/submit" in e["message"]]
        assert submit and submit[0]["account_id"] == account and len(submit[0]["request_id"]) == 16
        claimed = [e for e in lines if e.get("task_id") == task_id and "claimed" in e["message"]]
        assert claimed and claimed[0]["account_id"] == account
        assert claimed[0]["message"].endswith(image.split("?")[0])  # scheme://host/path
        outcome = [e for e in lines if "failed IMAGE_DOWNLOAD_FAILED" in e["message"]]
        assert outcome and outcome[0]["task_id"] == task_id
        assert outcome[0]["account_id"] == account
        callback = [e for e in lines if "callback 2 attempt 1" in e["message"]]
        assert callback and callback[0]["task_id"] == task_id
        assert callback[0]["account_id"] == account
        assert all({"time", "level", "logger", "message"} <= set(e) for e in lines)
    else:
        submit = [line for line in logged.splitlines() if "POST /api/aigc/task/submit" in line]
        assert submit and f"account_id={account}]" in submit[0] and "[request_id=" in submit[0]
        claimed = [line for line in logged.splitlines() if f"task {task_id}: claimed" in line]
        assert claimed and f"[task_id={task_id} account_id={account}]" in claimed[0]
        for said in (f"task {task_id}: failed", f"task {task_id}: callback 2 attempt 1"):
            found = [line for line in logged.splitlines() if said in line]
            assert found and f"[task_id={task_id} account_id={account}]" in found[0], said


async def test_api_only_node_reports_missing_workers_in_readyz_without_failing(
    start_service: StartService,
) -> None:
    worker_node = await start_service(credits=1)  # a node with a worker, its database
    settings = worker_node.settings
    app = create_app(
        settings,
        with_worker=False,
        services_factory=lambda s, w: open_services(
            s, with_worker=w, detector=worker_node.detector
        ),
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    client = httpx.AsyncClient(timeout=30)
    try:
        await eventually(lambda: server.started or serving.done(), 30, "the API node")
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/readyz"

        async def workers() -> dict[str, Any]:
            response = await client.get(url)
            assert response.status_code == 200
            body = response.json()
            assert_envelope(body, 100000)
            report: dict[str, Any] = body["data"]["workers"]
            return report

        async def beating() -> bool:  # the worker node's first heartbeat
            return (await workers())["live"] == 1

        await eventually(beating, 20, "the worker node's heartbeat")
        await worker_node.stop()  # graceful: its heartbeat row goes
        report = await workers()
        assert report["live"] == 0 and "no worker seen" in report["warning"]

        now = worker_node.services.clock.now_ms()
        stale = WorkerBeat("worker@gone:1", "gone", 1, now - 90_000, now - 60_000, 7)
        opened = app.state.services.ops
        await opened.record_heartbeat(stale)  # a worker that died a minute ago
        assert (await workers())["live"] == 0
        await opened.record_heartbeat(WorkerBeat("worker@b:2", "b", 2, now, now, 0))
        assert await workers() == {"live": 1}
        metrics = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert "facelens_workers_live 1.0" in metrics.text
        assert 'facelens_build_info{role="api"' in metrics.text
    finally:
        await client.aclose()
        server.should_exit = True
        await asyncio.wait_for(serving, 30)
