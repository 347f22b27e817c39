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
from abc import ABC, abstractmethod
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facelens.application.logcontext import log_context

log = logging.getLogger("facelens.api")


class HttpMiddleware(ABC):
    """A pure ASGI middleware that acts on HTTP requests only: lifespan and websocket
    scopes go straight through to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    @abstractmethod
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The middleware's own work on an HTTP request."""


class WatchedSend:
    """The `send` a middleware hands the app: notes the status of the response the app
    starts (`status` keeps `default` if it never does) and appends `headers` to it."""

    def __init__(
        self, send: Send, default: int, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        self._send = send
        self._headers = list(headers)
        self.status = default

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self._headers:
                message["headers"] = [*message.get("headers", []), *self._headers]
        await self._send(message)


class RequestContext(HttpMiddleware):
    """Gives every request an id (X-Request-ID, echoed back) and logs one line per request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        answer = WatchedSend(send, 0, [(b"x-request-id", rid.encode())])
        with log_context(request_id=rid):  # every log line of this request carries it
            try:
                await self.app(scope, receive, answer)
            finally:
                log.info(
                    "request %s %s %s -> %d (%.1f ms)",
                    rid,
                    scope.get("method", ""),
                    scope.get("path", ""),
                    answer.status,
                    (time.perf_counter() - started) * 1000,
                )


class BodyLimit(HttpMiddleware):
    """Reads the body (bounded) before the app sees it, then replays it.

    `limits` maps a path prefix to its own limit (the upload endpoint takes images);
    every other path gets `default_bytes`.
    """

    def __init__(self, app: ASGIApp, default_bytes: int, limits: dict[str, int]) -> None:
        super().__init__(app)
        self.default_bytes = default_bytes
        self.limits = limits

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits.items():
            if path.startswith(prefix):
                return limit
        return self.default_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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
