"""Account balance and usage."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from facelens.entrypoints.api.deps import AuthDep, TasksDep
from facelens.entrypoints.api.envelope import SUCCESS, envelope
from facelens.entrypoints.api.schemas import Envelope
from facelens.entrypoints.api.views import usage_json

router = APIRouter()


@router.get("/api/account", response_model=Envelope, tags=["account"])
async def account(auth: AuthDep, tasks: TasksDep) -> JSONResponse:
    """Your balance in credits and what you used."""
    fresh, usage = await tasks.usage(auth.account)
    return envelope(
        SUCCESS,
        {
            "account_id": fresh.id,
            "name": fresh.name,
            "credits": fresh.credits,
            "usage": usage_json(usage),
        },
    )
