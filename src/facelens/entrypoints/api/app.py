"""`create_app(settings)`: the FastAPI application, built on demand, never at import."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from facelens import __version__
from facelens.entrypoints.api import console, routes_account, routes_detect, routes_tasks
from facelens.entrypoints.api.envelope import install_error_handlers
from facelens.entrypoints.api.middleware import BodyLimit, RequestContext
from facelens.entrypoints.bootstrap import Runtime, open_runtime
from facelens.entrypoints.config import Settings

RuntimeFactory = Callable[[Settings, bool], AbstractAsyncContextManager[Runtime]]


def _default_factory(settings: Settings, with_worker: bool) -> AbstractAsyncContextManager[Runtime]:
    return open_runtime(settings, with_worker=with_worker)


def create_app(
    settings: Settings,
    *,
    with_worker: bool = True,
    runtime_factory: RuntimeFactory = _default_factory,
) -> FastAPI:
    """The API; with `with_worker` the same process also runs the worker and dispatcher."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime_factory(settings, with_worker) as runtime:
            app.state.runtime = runtime
            stop = asyncio.Event()
            background = asyncio.create_task(runtime.run_background(stop), name="background")
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
    )
    install_error_handlers(app)
    app.include_router(routes_tasks.router)
    app.include_router(routes_detect.router)
    app.include_router(routes_account.router)
    app.include_router(console.router)
    app.add_middleware(
        BodyLimit,
        default_bytes=settings.max_request_bytes,
        limits={"/api/face/detect": settings.max_image_bytes + 65_536},
    )
    app.add_middleware(RequestContext)
    return app
