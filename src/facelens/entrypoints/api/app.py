"""`create_app(settings)`: the FastAPI application, built on demand, never at import."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from facelens import __version__
from facelens.entrypoints.api import (
    console,
    routes_account,
    routes_detect,
    routes_probes,
    routes_self_service,
    routes_tasks,
)
from facelens.entrypoints.api.body_limits import body_limits
from facelens.entrypoints.api.envelope import install_error_handlers
from facelens.entrypoints.api.middleware import BodyLimit, RequestContext
from facelens.entrypoints.api.observability import RequestMetrics, metrics_router
from facelens.entrypoints.api.openapi_doc import install_openapi
from facelens.entrypoints.api.ratelimit import ApiLimits
from facelens.entrypoints.api.swagger_docs import docs_router
from facelens.entrypoints.bootstrap import Services, open_services
from facelens.entrypoints.config import Settings

ServicesFactory = Callable[[Settings, bool], AbstractAsyncContextManager[Services]]
"""(settings, with_worker) -> the wired services; tests pass one with a stand-in detector."""

ROUTERS = (
    routes_tasks.router,
    routes_detect.router,
    routes_account.router,
    routes_probes.router,
    console.router,
    routes_self_service.router,
)


def _default_factory(
    settings: Settings, with_worker: bool
) -> AbstractAsyncContextManager[Services]:
    return open_services(settings, with_worker=with_worker)


def create_app(
    settings: Settings,
    *,
    with_worker: bool = True,
    services_factory: ServicesFactory = _default_factory,
) -> FastAPI:
    """The API; with `with_worker` the same process also runs the worker and dispatcher."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services_factory(settings, with_worker) as services:
            app.state.services = services
            stop = asyncio.Event()
            background = asyncio.create_task(services.run_background(stop), name="background")
            try:
                yield
            finally:
                stop.set()
                await background

    app = FastAPI(
        title="facelens",
        version=__version__,
        description="Self-hosted face detection, wire-compatible with the hosted "
        "Image Face Detection API. Every answer is a {code, message, data} envelope.",
        lifespan=lifespan,
        docs_url=None,  # ours, with Swagger UI from a package instead of a CDN
        redoc_url=None,  # ReDoc ships in no package: it would load from a CDN
    )
    app.state.limits = ApiLimits.from_settings(settings)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(
        BodyLimit, default_bytes=settings.max_request_bytes, limits=body_limits(settings)
    )
    app.include_router(metrics_router(settings.metrics_token))
    install_openapi(app)
    app.include_router(docs_router(app.title, app.openapi_url or "/openapi.json"))
    app.add_middleware(RequestMetrics)  # inside RequestContext: its lines have the id
    app.add_middleware(RequestContext)
    return app
