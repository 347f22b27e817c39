"""The hosted API's submit endpoint and the task query extensions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from facelens.application.service import RawTask
from facelens.core.errors import FacelensError, InvalidParameter, NotFound
from facelens.entrypoints.api.deps import AccountDep, LimitsDep, RuntimeDep, key_id
from facelens.entrypoints.api.envelope import SUCCESS, envelope
from facelens.entrypoints.api.schemas import Envelope, SubmitEnvelope, SubmitRequest
from facelens.entrypoints.api.views import task_json

router = APIRouter(prefix="/api/aigc", tags=["tasks"])

MAX_TASK_ID = 2**63 - 1
MAX_CALLBACK_PARAMS_DEPTH = 32
"""Deepest nesting of arrays/objects in `callback_params`. The size limit alone lets
~8,000 levels through, which later recursive code (serialisers, receivers' parsers)
may not survive; no real request context is this deep."""


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion (scalars are 0)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_CALLBACK_PARAMS_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


@router.post("/task/submit", response_model=SubmitEnvelope)
async def submit(
    body: SubmitRequest,
    request: Request,
    account: AccountDep,
    runtime: RuntimeDep,
    limits: LimitsDep,
) -> JSONResponse:
    """Queue face detection tasks; one credit each, debited atomically with the tasks."""
    for index, item in enumerate(body.task_list):
        if _depth(item.callback_params) > MAX_CALLBACK_PARAMS_DEPTH:
            raise InvalidParameter(
                f"task_list[{index}].callback_params",
                f"nested deeper than {MAX_CALLBACK_PARAMS_DEPTH} levels",
            )
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
    cost = max(1, len(raw))
    limits.tasks.check(key_id(request), cost)
    try:
        result = await runtime.tasks.submit(account, body.aigc_type, body.callback_url, raw)
    except FacelensError:
        limits.tasks.refund(key_id(request), cost)  # nothing was queued
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
async def get_task(task_id: int, account: AccountDep, runtime: RuntimeDep) -> JSONResponse:
    """Status, result and callback delivery attempts of one of your tasks."""
    if not 0 < task_id <= MAX_TASK_ID:  # the database's BIGINT would overflow: no such task
        raise NotFound(f"task {task_id}")
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
