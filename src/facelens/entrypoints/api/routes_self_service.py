"""An account's own view of itself, the API behind the web console: its tasks page by
page, a complete callback sent again, usage per day, its webhook secret, its API keys.

Like every `/api/...` route these answer the `{code, message, data}` envelope and see
only the key's own account. Secrets (the webhook secret, a new key) are answered with
`Cache-Control: no-store`.
"""

from __future__ import annotations

import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from facelens.application.self_service import MAX_DAYS, MAX_PAGE, SelfService
from facelens.core.callbacks import webhook_id
from facelens.core.domain import ApiKeyInfo, JsonObject, ProcessStatus, TaskStatus
from facelens.core.self_service import DAY_MS, DayUsage, TaskFilter
from facelens.entrypoints.api.deps import AuthDep, bearer_key
from facelens.entrypoints.api.envelope import SUCCESS, envelope
from facelens.entrypoints.api.ratelimit import RateLimiter
from facelens.entrypoints.api.schemas import Envelope
from facelens.entrypoints.api.views import task_json
from facelens.entrypoints.bootstrap import Services

router = APIRouter()

MAX_TASK_ID = 2**63 - 1
REDELIVERIES_PER_MINUTE = 10
"""Per key, burst included: a redelivery is a manual repair, not a delivery channel."""
NO_STORE = {"Cache-Control": "no-store"}


def _self_service(request: Request) -> SelfService:
    services: Services = request.app.state.services
    wake = services.dispatcher.wake if services.dispatcher is not None else (lambda: None)
    return SelfService(services.store, services.clock, on_redelivery=wake)


def _redelivery_limiter(request: Request) -> RateLimiter:
    """This process's redelivery bucket per key, made on first use."""
    limiter: RateLimiter | None = getattr(request.app.state, "redelivery_limiter", None)
    if limiter is None:
        limiter = RateLimiter(REDELIVERIES_PER_MINUTE / 60.0, REDELIVERIES_PER_MINUTE)
        request.app.state.redelivery_limiter = limiter
    return limiter


SelfServiceDep = Annotated[SelfService, Depends(_self_service)]
RedeliveryLimiterDep = Annotated[RateLimiter, Depends(_redelivery_limiter)]
TaskId = Annotated[int, Path(ge=1, le=MAX_TASK_ID)]


@router.get("/api/aigc/tasks", response_model=Envelope, tags=["tasks"])
async def list_tasks(
    auth: AuthDep,
    service: SelfServiceDep,
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this status.")] = None,
    creation_id: Annotated[
        str | None, Query(max_length=64, description="Only the tasks of one submission.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Tasks per page.")] = 20,
    before_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_TASK_ID,
            description="Only tasks older than this id: the previous page's `next_before_id`.",
        ),
    ] = None,
) -> JSONResponse:
    """Your tasks, newest first, each as `GET /api/aigc/task/{id}` shows it. Keyset
    pages: `next_before_id` (null on the last page) fetches the next, older page, and
    pages do not shift while new tasks arrive."""
    page = await service.list_tasks(
        auth.account, TaskFilter(status, creation_id or None, before_id), limit
    )
    return envelope(
        SUCCESS,
        {
            "tasks": [task_json(view) for view in page.tasks],
            "next_before_id": None if page.next_before_id is None else str(page.next_before_id),
        },
    )


@router.post("/api/aigc/task/{task_id}/redeliver", response_model=Envelope, tags=["tasks"])
async def redeliver(
    task_id: TaskId, auth: AuthDep, service: SelfServiceDep, limiter: RedeliveryLimiterDep
) -> JSONResponse:
    """Send the task's complete callback again, for a receiver that was down longer
    than the retry schedule: a new delivery of the same body with the same `webhook-id`
    (receivers deduplicate on it), freshly signed, retried on the usual schedule. At
    most one is pending per task (100010 while one is); 10 per minute per key."""
    limiter.check(auth.key_id)
    await service.redeliver(auth.account, task_id)
    return envelope(
        SUCCESS,
        {"task_id": str(task_id), "webhook_id": webhook_id(task_id, ProcessStatus.COMPLETED)},
    )


def _day_json(usage: DayUsage) -> JsonObject:
    date = datetime.datetime.fromtimestamp(usage.day * DAY_MS / 1000, datetime.UTC)
    return {
        "date": date.date().isoformat(),
        "tasks": {
            status.value: usage.tasks_by_status.get(status.value, 0) for status in TaskStatus
        },
        "credits_charged": usage.credits_charged,
        "credits_refunded": usage.credits_refunded,
    }


@router.get("/api/account/usage", response_model=Envelope, tags=["account"])
async def daily_usage(
    auth: AuthDep,
    service: SelfServiceDep,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="How many UTC days.")] = 30,
) -> JSONResponse:
    """Usage per UTC day, oldest first, today last, every day present: the tasks created
    that day by their status (outcome) now, and the credits charged and refunded."""
    usage = await service.daily_usage(auth.account, days)
    return envelope(SUCCESS, {"days": [_day_json(day) for day in usage]})


@router.get("/api/account/webhook-secret", response_model=Envelope, tags=["account"])
async def webhook_secret(auth: AuthDep) -> JSONResponse:
    """The secret your callbacks are signed with (Standard Webhooks, `whsec_...`)."""
    return envelope(SUCCESS, {"webhook_secret": auth.account.webhook_secret}, headers=NO_STORE)


def _key_json(key: ApiKeyInfo, in_use: str) -> JsonObject:
    return {
        "prefix": key.prefix,
        "created_time": key.created_at_ms,
        "revoked_time": key.revoked_at_ms,
        "in_use": key.revoked_at_ms is None and in_use.startswith(key.prefix),
    }


@router.get("/api/keys", response_model=Envelope, tags=["keys"])
async def list_keys(request: Request, auth: AuthDep, service: SelfServiceDep) -> JSONResponse:
    """Your account's API keys by prefix (only the prefix is stored in clear), live and
    revoked; `in_use` marks the key of this request."""
    keys = await service.keys(auth.account)
    in_use = bearer_key(request) or ""
    return envelope(SUCCESS, {"keys": [_key_json(key, in_use) for key in keys]})


@router.post("/api/keys", response_model=Envelope, tags=["keys"])
async def create_key(auth: AuthDep, service: SelfServiceDep) -> JSONResponse:
    """A new API key for your account. The key is in this answer only: store it now."""
    new, info = await service.create_key(auth.account)
    return envelope(
        SUCCESS,
        {"key": new.key, "prefix": info.prefix, "created_time": info.created_at_ms},
        headers=NO_STORE,
    )


@router.delete("/api/keys/{prefix}", response_model=Envelope, tags=["keys"])
async def revoke_key(
    request: Request,
    prefix: Annotated[str, Path(min_length=1, max_length=32)],
    auth: AuthDep,
    service: SelfServiceDep,
) -> JSONResponse:
    """Revoke one of your live keys. The key making the request may revoke itself,
    unless it is the account's last live key (100010)."""
    await service.revoke_key(auth.account, prefix, bearer_key(request) or "")
    return envelope(SUCCESS, {"prefix": prefix, "revoked": True})
