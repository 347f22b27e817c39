"""`Annotated` dependencies: the runtime, the rate limits and the authenticated account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from facelens.application.keys import hash_key
from facelens.core.domain import Account
from facelens.core.errors import InvalidKey
from facelens.entrypoints.api.ratelimit import ApiLimits, RateLimited
from facelens.entrypoints.bootstrap import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def get_limits(request: Request, runtime: RuntimeDep) -> ApiLimits:
    """This process's rate limits, built from the settings on first use."""
    limits: ApiLimits | None = getattr(request.app.state, "limits", None)
    if limits is None:
        limits = ApiLimits.from_settings(runtime.settings)
        request.app.state.limits = limits
    return limits


LimitsDep = Annotated[ApiLimits, Depends(get_limits)]


def key_id(request: Request) -> str:
    """The rate-limit identity of the request's key (its hash, never the key itself)."""
    return str(getattr(request.state, "key_id", ""))


async def current_account(request: Request, runtime: RuntimeDep, limits: LimitsDep) -> Account:
    """Raises InvalidKey (answered 100030) for a missing, unknown or revoked key, and
    RateLimited (429) when this address failed too often or this key asks too fast."""
    address = request.client.host if request.client else "-"
    wait = limits.auth_failures.wait_time(address)
    if wait > 0:
        raise RateLimited(wait)  # refused before the key is even looked at
    key = bearer_key(request)
    try:
        account = await runtime.tasks.authenticate(key)
    except InvalidKey:
        limits.auth_failures.acquire(address)
        raise
    assert key is not None
    request.state.key_id = hash_key(key)
    limits.requests.check(request.state.key_id)
    return account


AccountDep = Annotated[Account, Depends(current_account)]
