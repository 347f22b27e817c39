"""The hosted API's submit endpoint and the task query extensions."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from facelens.application.intake import RawTask
from facelens.core.errors import FacelensError, NotFound
from facelens.entrypoints.api.deps import AuthDep, LimitsDep, TasksDep
from facelens.entrypoints.api.envelope import SUCCESS, envelope
from facelens.entrypoints.api.schemas import Envelope, SubmitEnvelope, SubmitRequest
from facelens.entrypoints.api.views import task_json

router = APIRouter(prefix="/api/aigc", tags=["tasks"])

MAX_TASK_ID = 2**63 - 1


@router.post("/task/submit", response_model=SubmitEnvelope)
async def submit(
    body: SubmitRequest, auth: AuthDep, tasks: TasksDep, limits: LimitsDep
) -> JSONResponse:
    """Queue face detection tasks; one credit each, debited atomically with the tasks."""
    raw = [RawTask(item.additional_params, item.callback_params) for item in body.task_list]
    cost = max(1, len(raw))
    limits.tasks.check(auth.key_id, cost)
    try:
        result = await tasks.submit(auth.account, body.aigc_type, body.callback_url, raw)
    except FacelensError:
        limits.tasks.refund(auth.key_id, cost)  # nothing was queued
        raise
    return envelope(
        SUCCESS,
        {
            "credits_consumed": result.credits_consumed,
            "creation_id": result.creation_id,
            "task_id_list": result.task_ids,
        },
    )


@router.get("/task/{task_id}", response_model=Envelope)
async def get_task(task_id: int, auth: AuthDep, tasks: TasksDep) -> JSONResponse:
    """Status, result and callback delivery attempts of one of your tasks."""
    if not 0 < task_id <= MAX_TASK_ID:  # the database's BIGINT would overflow: no such task
        raise NotFound(f"task {task_id}")
    view = await tasks.get_task(auth.account, task_id)
    if view is None:
        raise NotFound(f"task {task_id}")
    return envelope(SUCCESS, task_json(view))


@router.get("/creation/{creation_id}", response_model=Envelope)
async def get_creation(creation_id: str, auth: AuthDep, tasks: TasksDep) -> JSONResponse:
    """All tasks of one submission, in submission order."""
    views = await tasks.get_creation(auth.account, creation_id)
    if not views:
        raise NotFound(f"creation {creation_id}")
    return envelope(
        SUCCESS, {"creation_id": creation_id, "tasks": [task_json(view) for view in views]}
    )
