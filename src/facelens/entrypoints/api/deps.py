"""`Annotated` dependencies: each route names what it uses, nothing more.

The wired `Services` sit on `app.state.services` (set by the app's lifespan); the
getters here are the only code that reaches into them, so a route's signature says
which use case, rules or store it touches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from facelens.application.instant import InstantDetection
from facelens.application.intake import IntakeRules
from facelens.application.keys import hash_key
from facelens.application.logcontext import note
from facelens.application.pipeline import ImagePipeline
from facelens.application.ports import Store
from facelens.application.service import TaskService
from facelens.core.domain import Account
from facelens.core.errors import InvalidKey
from facelens.entrypoints.api.ratelimit import ApiLimits, RateLimited
from facelens.entrypoints.bootstrap import Services


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _tasks(request: Request) -> TaskService:
    return _services(request).tasks


def _rules(request: Request) -> IntakeRules:
    return _services(request).tasks.rules


def _instant(request: Request) -> InstantDetection:
    return _services(request).instant


def _store(request: Request) -> Store:
    return _services(request).store


def _pipeline(request: Request) -> ImagePipeline:
    return _services(request).pipeline


def _limits(request: Request) -> ApiLimits:
    limits: ApiLimits = request.app.state.limits
    return limits


TasksDep = Annotated[TaskService, Depends(_tasks)]
"""Submit and query use cases."""
RulesDep = Annotated[IntakeRules, Depends(_rules)]
"""What a request may contain (URL form, detection options the detector offers)."""
InstantDep = Annotated[InstantDetection, Depends(_instant)]
"""The synchronous detector (one credit, the answer at once)."""
StoreDep = Annotated[Store, Depends(_store)]
PipelineDep = Annotated[ImagePipeline, Depends(_pipeline)]
LimitsDep = Annotated[ApiLimits, Depends(_limits)]
"""This process's rate limits (built by `create_app`)."""


@dataclass(frozen=True, slots=True)
class Auth:
    """Who is asking: the key's account, and the key's hash as its rate-limit identity
    (never the key itself)."""

    account: Account
    key_id: str


def bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


DECLARED_BEARER = HTTPBearer(
    scheme_name="bearerAuth",
    description="An API key (fl_...): printed by `facelens serve` on first start, or "
    "made with `facelens keys create ACCOUNT` or the console's Keys view.",
    auto_error=False,
)
"""Puts the key in the OpenAPI document (security scheme, /docs' Authorize button). It
never refuses anything (auto_error off): `authenticate` decides, in the envelope."""


async def authenticate(
    request: Request,
    tasks: TasksDep,
    limits: LimitsDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(DECLARED_BEARER)],
) -> Auth:
    """Raises InvalidKey (answered 100030) for a missing, unknown or revoked key, and
    RateLimited (429) when this address failed too often or this key asks too fast."""
    address = request.client.host if request.client else "-"
    wait = limits.auth_failures.wait_time(address)
    if wait > 0:
        raise RateLimited(wait)  # refused before the key is even looked at
    key = bearer_key(request)
    try:
        account = await tasks.authenticate(key)
    except InvalidKey:
        limits.auth_failures.acquire(address)
        raise
    assert key is not None
    note(account_id=account.id)  # the request's log lines name the account from here on
    auth = Auth(account, hash_key(key))
    limits.requests.check(auth.key_id)
    return auth


AuthDep = Annotated[Auth, Depends(authenticate)]
