"""The API's side of operations: request metrics and the `/metrics` endpoint.

`RequestMetrics` counts every HTTP answer by the route's *template*
(`/api/aigc/task/{task_id}`), never the raw path: raw paths carry ids and would make
one time series per task. Paths that match no route count as `unmatched`.

`/metrics` is open by default (the default bind is loopback); with
`FACELENS_METRICS_TOKEN` set it wants `Authorization: Bearer <token>`, compared in
constant time.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from starlette.types import Receive, Scope, Send

from facelens.adapters.metrics import CONTENT_TYPE, Metrics
from facelens.core.domain import JsonObject
from facelens.core.errors import StoreUnavailable
from facelens.entrypoints.api.middleware import HttpMiddleware, WatchedSend
from facelens.entrypoints.bootstrap import Services
from facelens.entrypoints.metrics_server import token_accepted

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (set by the router), else
    `unmatched` (404s for made-up paths must not create series). Starlette's plain
    routes (FastAPI's /openapi.json and /docs) leave only their endpoint in the scope."""
    route = scope.get("route")
    endpoint = scope.get("endpoint")
    if route is None and endpoint is not None:
        routes = getattr(getattr(scope.get("app"), "router", None), "routes", ())
        route = next((r for r in routes if getattr(r, "endpoint", None) is endpoint), None)
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) and template else UNMATCHED


def app_metrics(app: object) -> Metrics | None:
    """The running app's metrics (None before its lifespan opened the services)."""
    services = getattr(getattr(app, "state", None), "services", None)
    metrics = getattr(services, "metrics", None)
    return metrics if isinstance(metrics, Metrics) else None


class RequestMetrics(HttpMiddleware):
    """One `facelens_http_requests_total` increment and one duration observation per
    answered request (500 when the app raised before answering). The metrics belong to
    the services the lifespan opened."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        answer = WatchedSend(send, 500)
        try:
            await self.app(scope, receive, answer)
        finally:
            metrics = app_metrics(scope.get("app"))
            if metrics is not None:
                metrics.http_request(
                    scope.get("method", ""),
                    route_template(scope),
                    answer.status,
                    time.perf_counter() - started,
                )


def metrics_router(token: str) -> APIRouter:
    """`GET /metrics`: this process's metrics in the Prometheus text format."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        metrics = app_metrics(request.app)
        if metrics is None:
            return Response("starting\n", status_code=503, media_type="text/plain")
        if not token_accepted(request.headers.get("authorization"), token):
            return Response(
                "metrics need Authorization: Bearer <FACELENS_METRICS_TOKEN>\n",
                status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(await metrics.exposition(), media_type=CONTENT_TYPE)

    return router


async def worker_presence(services: Services) -> JsonObject | None:
    """For /readyz of an API-only node: how many workers are live in the database,
    and a warning when none is (tasks would be accepted and charged, never analysed).
    None for a process that runs its own worker. Never fails the probe: an API node
    is ready to take submissions whether or not workers run yet."""
    if services.worker is not None or services.ops is None:
        return None
    window_s = services.settings.worker_live_seconds
    try:
        live = await services.ops.live_workers(services.clock.now_ms() - int(window_s * 1000))
    except StoreUnavailable:
        return {"live": None, "warning": "cannot read worker heartbeats"}
    report: JsonObject = {"live": len(live)}
    if not live:
        report["warning"] = f"no worker seen for {window_s:g} s: tasks queue up unanalysed"
    return report
