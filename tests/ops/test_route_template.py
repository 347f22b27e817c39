"""`route` label of the request metrics on a real FastAPI router: the template for API
routes and for FastAPI's own plain routes (/openapi.json, /docs), `unmatched` only for
paths no route answers."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from facelens.entrypoints.api.observability import UNMATCHED, route_template


async def test_route_template_names_every_route_the_app_answers() -> None:
    app = FastAPI()
    seen: list[str] = []

    @app.get("/api/aigc/task/{task_id}")
    async def task(task_id: int) -> dict[str, int]:
        return {"task_id": task_id}

    async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http":
            seen.append(route_template(scope))

    transport = httpx.ASGITransport(app=recorder)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in ("/api/aigc/task/12", "/openapi.json", "/docs", "/made/up/path"):
            await client.get(path)
    assert seen == ["/api/aigc/task/{task_id}", "/openapi.json", "/docs", UNMATCHED]
