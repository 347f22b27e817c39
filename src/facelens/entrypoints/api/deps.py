"""`Annotated` dependencies: the runtime and the authenticated account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from facelens.core.domain import Account
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


async def current_account(request: Request, runtime: RuntimeDep) -> Account:
    """Raises InvalidKey (answered 100030) for a missing, unknown or revoked key."""
    return await runtime.tasks.authenticate(bearer_key(request))


AccountDep = Annotated[Account, Depends(current_account)]
