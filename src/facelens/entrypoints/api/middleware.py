"""Pure ASGI middleware: request ids and the request body size limit.

The size limit is enforced on the raw byte stream before any JSON parsing, so a huge
body costs at most the limit in memory: Content-Length is checked up front and a
chunked body is cut as soon as it passes the limit.
"""

from __future__ import annotations

import json
import logging
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facelens.application.logcontext import log_context

log = logging.getLogger("facelens.api")


class RequestContext:
    """Gives every request an id (X-Request-ID, echoed back) and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        with log_context(request_id=rid):  # every log line of this request carries it
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                log.info(
                    "request %s %s %s -> %d (%.1f ms)",
                    rid,
                    scope.get("method", ""),
                    scope.get("path", ""),
                    status,
                    (time.perf_counter() - started) * 1000,
                )


class BodyLimit:
    """Reads the body (bounded) before the app sees it, then replays it.

    `limits` maps a path prefix to its own limit (the upload endpoint takes images);
    every other path gets `default_bytes`.
    """

    def __init__(self, app: ASGIApp, default_bytes: int, limits: dict[str, int]) -> None:
        self.app = app
        self.default_bytes = default_bytes
        self.limits = limits

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits.items():
            if path.startswith(prefix):
                return limit
        return self.default_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _refuse(send, limit)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, limit: int) -> None:
    """100010 in the envelope; HTTP 200 like every other business outcome."""
    body = json.dumps(
        {
            "code": 100010,
            "message": f"invalid parameter body: larger than {limit} bytes",
            "data": None,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
