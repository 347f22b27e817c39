"""The hosted API's submit endpoint and the task query extensions."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from facelens.application.service import RawTask
from facelens.core.errors import NotFound
from facelens.entrypoints.api.deps import AccountDep, RuntimeDep
from facelens.entrypoints.api.envelope import SUCCESS, envelope
from facelens.entrypoints.api.schemas import Envelope, SubmitEnvelope, SubmitRequest
from facelens.entrypoints.api.views import task_json

router = APIRouter(prefix="/api/aigc", tags=["tasks"])


@router.post("/task/submit", response_model=SubmitEnvelope)
async def submit(body: SubmitRequest, account: AccountDep, runtime: RuntimeDep) -> JSONResponse:
    """Queue face detection tasks; one credit each, debited atomically with the tasks."""
    raw = [
        RawTask(
            image_url=item.additional_params.target_image_url,
            callback_params=item.callback_params,
            options=item.additional_params.model_dump(
                exclude={"target_image_url"}, exclude_none=True
            ),
        )
        for item in body.task_list
    ]
    result = await runtime.tasks.submit(account, body.aigc_type, body.callback_url, raw)
    return envelope(
        SUCCESS,
        {
            "credits_consumed": result.credits_consumed,
            "creation_id": result.creation_id,
            "task_id_list": result.task_ids,
        },
    )


@router.get("/task/{task_id}", response_model=Envelope)
async def get_task(task_id: int, account: AccountDep, runtime: RuntimeDep) -> JSONResponse:
    """Status, result and callback delivery attempts of one of your tasks."""
    view = await runtime.tasks.get_task(account, task_id)
    if view is None:
        raise NotFound(f"task {task_id}")
    return envelope(SUCCESS, task_json(view))


@router.get("/creation/{creation_id}", response_model=Envelope)
async def get_creation(creation_id: str, account: AccountDep, runtime: RuntimeDep) -> JSONResponse:
    """All tasks of one submission, in submission order."""
    views = await runtime.tasks.get_creation(account, creation_id)
    if not views:
        raise NotFound(f"creation {creation_id}")
    return envelope(
        SUCCESS, {"creation_id": creation_id, "tasks": [task_json(view) for view in views]}
    )
