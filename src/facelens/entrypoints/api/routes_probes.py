"""Health and readiness probes for load balancers and orchestrators (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from facelens.core.errors import StoreUnavailable
from facelens.entrypoints.api.deps import StoreDep
from facelens.entrypoints.api.envelope import (
    STORE_RETRY_AFTER_S,
    SUCCESS,
    UNKNOWN_ERROR,
    envelope,
)
from facelens.entrypoints.api.observability import worker_presence
from facelens.entrypoints.api.schemas import Envelope

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=Envelope)
async def healthz() -> JSONResponse:
    """The process is up (no dependency is checked)."""
    return envelope(SUCCESS, {"status": "ok"})


@router.get("/readyz", response_model=Envelope)
async def readyz(request: Request, store: StoreDep) -> JSONResponse:
    """Ready to serve: the database answers and the model is loaded (`model`: the
    models it runs, `mode`: their preset, absent for a model chosen alone). An API-only
    node also reports live workers (`workers`), with a warning, never a failure, if none."""
    try:
        await store.ping()
    except StoreUnavailable:
        return envelope(
            UNKNOWN_ERROR,
            {"database": "unreachable"},
            "not ready",
            status=503,
            headers={"Retry-After": STORE_RETRY_AFTER_S},
        )
    model, mode = request.app.state.services.detector
    ready: dict[str, object] = {"status": "ready", "database": "ok", "model": model}
    if mode:
        ready["mode"] = mode
    workers = await worker_presence(request.app.state.services)
    if workers is not None:
        ready["workers"] = workers
    return envelope(SUCCESS, ready)
