"""`/metrics` for a process without the HTTP API (`facelens worker --metrics-port`).

A small threaded WSGI server (the standard library's, as prometheus-client's own
`start_http_server` uses) on its own thread, so a scrape never waits behind the
worker's event loop, and the loop never serves HTTP. The queue gauges are read from
the store on the loop that owns it (`run_coroutine_threadsafe`); everything else is
read from the registry directly. Same token rule as the API's `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from facelens.adapters.metrics import CONTENT_TYPE, Metrics
from facelens.entrypoints.config import Settings

log = logging.getLogger("facelens.metrics")

SCRAPE_TIMEOUT_S = 10.0


def token_accepted(authorization: str | None, token: str) -> bool:
    """True when no token is configured, or `authorization` is `Bearer <token>`."""
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """Serves `GET /metrics` on host:port until `close()`; `port` is the bound one
    (ask for port 0 to get a free one)."""

    def __init__(
        self, metrics: Metrics, loop: asyncio.AbstractEventLoop, host: str, port: int, token: str
    ) -> None:
        self._metrics = metrics
        self._loop = loop
        self._token = token
        self._server = make_server(
            host, port, self._app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"only /metrics here\n"]
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET")])
            return [b""]
        if not token_accepted(environ.get("HTTP_AUTHORIZATION"), self._token):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"metrics need Authorization: Bearer <FACELENS_METRICS_TOKEN>\n"]
        try:
            future = asyncio.run_coroutine_threadsafe(self._metrics.exposition(), self._loop)
            body = future.result(timeout=SCRAPE_TIMEOUT_S)
        except Exception:
            log.exception("metrics scrape failed")
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"metrics unavailable\n"]
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
        )
        return [body]


LOOPBACK = ("127.0.0.1", "::1", "localhost")


@contextlib.asynccontextmanager
async def serve_metrics(
    metrics: Metrics | None, settings: Settings
) -> AsyncIterator[MetricsServer | None]:
    """`facelens worker`'s /metrics while the block runs, when FACELENS_METRICS_PORT
    (or --metrics-port) is set; nothing otherwise."""
    if metrics is None or settings.metrics_port is None:
        yield None
        return
    if not settings.metrics_token and settings.metrics_host not in LOOPBACK:
        log.warning(
            "/metrics is open to anyone who reaches %s: set FACELENS_METRICS_TOKEN",
            settings.metrics_host,
        )
    try:
        server = MetricsServer(
            metrics,
            asyncio.get_running_loop(),
            settings.metrics_host,
            settings.metrics_port,
            settings.metrics_token,
        ).start()
    except OSError as exc:  # a port in use is an operator's error: one line, no traceback
        where = f"{settings.metrics_host}:{settings.metrics_port}"
        raise SystemExit(f"cannot serve /metrics on {where}: {exc.strerror or exc}") from None
    try:
        yield server
    finally:
        await asyncio.to_thread(server.close)
