"""Account balance and usage; health and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from facelens.core.errors import StoreUnavailable
from facelens.entrypoints.api.deps import AccountDep, RuntimeDep
from facelens.entrypoints.api.envelope import (
    STORE_RETRY_AFTER_S,
    SUCCESS,
    UNKNOWN_ERROR,
    envelope,
)
from facelens.entrypoints.api.schemas import Envelope
from facelens.entrypoints.api.views import usage_json

router = APIRouter()


@router.get("/api/account", response_model=Envelope, tags=["account"])
async def account(account: AccountDep, runtime: RuntimeDep) -> JSONResponse:
    """Your balance in credits and what you used."""
    fresh, usage = await runtime.tasks.usage(account)
    return envelope(
        SUCCESS,
        {
            "account_id": fresh.id,
            "name": fresh.name,
            "credits": fresh.credits,
            "usage": usage_json(usage),
        },
    )


@router.get("/healthz", response_model=Envelope, tags=["ops"])
async def healthz() -> JSONResponse:
    """The process is up (no dependency is checked)."""
    return envelope(SUCCESS, {"status": "ok"})


@router.get("/readyz", response_model=Envelope, tags=["ops"])
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready to serve: the database answers and the model is loaded."""
    try:
        await runtime.store.ping()
    except StoreUnavailable:
        return envelope(
            UNKNOWN_ERROR,
            {"database": "unreachable"},
            "not ready",
            status=503,
            headers={"Retry-After": STORE_RETRY_AFTER_S},
        )
    return envelope(
        SUCCESS, {"status": "ready", "database": "ok", "model": runtime.pipeline.detector_name}
    )
