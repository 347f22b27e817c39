"""A real HTTP server on 127.0.0.1 for tests: image hosts, webhook receivers, tarpits.

    with HttpServer({"/a.jpg": Reply(200, {"Content-Type": "image/jpeg"}, data)}) as server:
        url = server.url("/a.jpg")
        ...
        assert server.requests[0].headers["host"] == ...

Routes map a path (without query) to a `Reply` or to a handler `(RecordedRequest) ->
Reply`; unknown paths answer 404. Every request is recorded (method, path with query,
headers with lower-case names, body, monotonic time) in a thread-safe list, every
accepted TCP connection is counted, and every response records how many body bytes
were written before it finished or the client cut it. A reply can trickle (delay
between chunks), stream a generated body, or delay its status line.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server answers.

    `body` is sent with a Content-Length unless `chunked`; `chunk_size` splits it into
    writes with `chunk_delay` seconds between them (a trickle). `stream` instead yields
    the body pieces lazily (for huge bodies), chunked unless `headers` has a
    Content-Length. `delay` waits before the status line (a slow server).
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunk_size: int | None = None
    chunk_delay: float = 0.0
    chunked: bool = False
    stream: Callable[[], Iterable[bytes]] | None = None
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    """The request target as sent: path plus query."""
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes
    time: float
    """time.monotonic() when the request was read."""

    @property
    def route(self) -> str:
        return self.path.split("?", 1)[0]


@dataclass(slots=True)
class SentResponse:
    """How far one response got: body bytes written, and whether it was all sent."""

    path: str
    status: int
    body_bytes: int = 0
    completed: bool = False
    error: str = ""


Handler = Callable[[RecordedRequest], Reply]
Route = Reply | Handler


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, {"Location": location})


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: HttpServer

    def server_bind(self) -> None:
        """As HTTPServer's, minus its socket.getfqdn(): no reverse DNS lookup, ever."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def verify_request(self, request: object, client_address: object) -> bool:
        self.owner._count_connection()
        return True

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: a client that cuts a connection or fails a TLS handshake is expected."""


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read `requests`, not stderr."""

    def _handle(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        recorded = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
            time=time.monotonic(),
        )
        owner._record(recorded)
        route = owner.routes.get(recorded.route, owner.routes.get(recorded.path, owner.default))
        reply = route(recorded) if callable(route) else route
        sent = SentResponse(path=recorded.path, status=reply.status)
        owner._record_response(sent)
        try:
            self._write(reply, sent, owner.stopping)
            sent.completed = True
        except OSError as exc:  # the client cut the connection: that is what tests look at
            sent.error = type(exc).__name__
            self.close_connection = True

    def _write(self, reply: Reply, sent: SentResponse, stopping: threading.Event) -> None:
        if reply.delay and stopping.wait(reply.delay):
            return
        names = {key.lower() for key in reply.headers}
        extra: dict[str, str] = {}
        pieces: Iterable[bytes]
        if reply.stream is not None:
            pieces = reply.stream()
            chunked = "content-length" not in names
        else:
            pieces = _split(reply.body, reply.chunk_size)
            chunked = reply.chunked
            if not chunked and "content-length" not in names:
                extra["Content-Length"] = str(len(reply.body))
        if chunked:
            extra["Transfer-Encoding"] = "chunked"
        self.send_response(reply.status)
        for key, value in [*reply.headers.items(), *extra.items()]:
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        first = True
        for piece in pieces:
            if not first and reply.chunk_delay and stopping.wait(reply.chunk_delay):
                return
            first = False
            if not piece:
                continue
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            self.wfile.flush()
            sent.body_bytes += len(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def _split(body: bytes, size: int | None) -> Iterator[bytes]:
    if not size:
        yield body
        return
    for start in range(0, len(body), size):
        yield body[start : start + size]


class HttpServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 (or `host="::1"`) and a free port.

    Started and stopped by `with`.
    `tls` (a server-side SSLContext, see `tests.support.tls`) makes it an https server
    that records the SNI name of each handshake in `sni_names`.
    """

    def __init__(
        self,
        routes: Mapping[str, Route] | None = None,
        *,
        host: str = "127.0.0.1",
        default: Route = Reply(404, {"Content-Type": "text/plain"}, b"not found"),
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.default = default
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._responses: list[SentResponse] = []
        self._connections = 0
        self.host = host
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, 0), _Handler)
        self._server.owner = self
        self.scheme = "https" if tls is not None else "http"
        self.sni_names: list[str | None] = []
        """The TLS server names clients asked for (SNI), one per handshake."""
        if tls is not None:
            tls.sni_callback = self._record_sni
            # Handshake lazily in the connection's thread, so a failing one only ends it.
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"{self.base_url}{path}"

    def route(self, path: str, reply: Route) -> None:
        with self._lock:
            self.routes[path] = reply

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def responses(self) -> list[SentResponse]:
        with self._lock:
            return list(self._responses)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (zero proves nothing even connected)."""
        with self._lock:
            return self._connections

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.route == path]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; raises TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{len(self._requests)} of {count} requests arrived")
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def _record_response(self, response: SentResponse) -> None:
        with self._lock:
            self._responses.append(response)

    def _record_sni(self, sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        with self._lock:
            self.sni_names.append(name)

    def _count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for connection-refused tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
