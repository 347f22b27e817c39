"""One small asyncio HTTP/1.1 server on loopback: image host and callback receiver.

The benchmark shares the machine with the service it measures, so this server is as
cheap as it can be: no framework, no thread per connection, keep-alive, one parse of
each callback body. Its listen backlog is large (`BACKLOG`): the dispatcher opens up
to its concurrency of connections at once, and a refused or reset connection would be
a retried callback, measured as service latency.

Routes: `GET /img/<n>` answers image `n`; `GET /fail/<n>` answers 404 at once (a task
that fails without any analysis); `POST /cb` records a callback (its arrival time on
`time.perf_counter()`, task id, process status, result code) and answers 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

BACKLOG = 4096
"""Pending connections the kernel queues (capped by net.core.somaxconn)."""

_MAX_HEADER = 64 * 1024


@dataclass(frozen=True, slots=True)
class Callback:
    task_id: int
    process_status: int
    result_code: int | None
    error_code: str
    arrived: float
    """time.perf_counter() when the body was read."""


class Loopback:
    """Start with `await start()`, stop with `await stop()`."""

    def __init__(self, images: Sequence[bytes], host: str = "127.0.0.1") -> None:
        self._images = list(images)
        self._host = host
        self._server: asyncio.Server | None = None
        self.port = 0
        self.callbacks: list[Callback] = []
        self.completed: dict[int, Callback] = {}
        """First complete callback per task id."""
        self.image_requests = 0
        self._changed = asyncio.Event()

    def url(self, path: str) -> str:
        return f"http://{self._host}:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, 0, backlog=BACKLOG, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def wait_completed(self, task_ids: Sequence[int], timeout_s: float) -> None:
        """Until every task in `task_ids` had its complete callback; TimeoutError."""
        wanted = set(task_ids)
        deadline = time.perf_counter() + timeout_s
        while not wanted <= self.completed.keys():
            left = deadline - time.perf_counter()
            if left <= 0:
                missing = len(wanted - self.completed.keys())
                raise TimeoutError(f"{missing} of {len(wanted)} complete callbacks missing")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > _MAX_HEADER:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                length = 0
                close = False
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value.strip())
                    elif name == "connection" and value.strip().lower() == "close":
                        close = True
                body = await reader.readexactly(length) if length else b""
                writer.write(self._answer(method, target.split("?", 1)[0], body))
                await writer.drain()
                if close:
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return
        except ValueError:  # a malformed request line or length: drop the connection
            return
        finally:
            writer.close()

    def _answer(self, method: str, path: str, body: bytes) -> bytes:
        if method == "POST" and path == "/cb":
            self._record(body)
            return _response(200, "text/plain", b"ok")
        if method == "GET" and path.startswith("/img/"):
            index = path[len("/img/") :]
            if index.isdigit() and int(index) < len(self._images):
                self.image_requests += 1
                return _response(200, "image/jpeg", self._images[int(index)])
        return _response(404, "text/plain", b"not found")

    def _record(self, body: bytes) -> None:
        arrived = time.perf_counter()
        try:
            data = json.loads(body)
            callback = Callback(
                task_id=int(data["task_id"]),
                process_status=int(data["process_status"]),
                result_code=data.get("result_code"),
                error_code=str(data.get("error_code") or ""),
                arrived=arrived,
            )
        except (ValueError, KeyError, TypeError):
            return
        self.callbacks.append(callback)
        if callback.process_status == 2:
            self.completed.setdefault(callback.task_id, callback)
            self._changed.set()


def _response(status: int, content_type: str, body: bytes) -> bytes:
    reason = {200: "OK", 404: "Not Found"}.get(status, "")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body
