"""SafeHttp against real HTTP(S) servers on 127.0.0.1.

Nothing here leaves loopback: host names other than `localhost` go through a stub
resolver that answers 127.0.0.1, so not even a DNS query reaches the outside.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facelens.adapters.http import SafeHttp
from facelens.core.errors import ImageDownloadFailed, ImageTooLarge, UrlNotAllowed
from facelens.core.netpolicy import AddressPolicy
from tests.support.servers import HttpServer, RecordedRequest, Reply, free_port, redirect
from tests.support.tls import TestCA

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000 + b"\xff\xd9"
IMAGE = Reply(200, {"Content-Type": "image/jpeg"}, JPEG)
OPEN = AddressPolicy(allow_private=True)


async def loopback_resolver(host: str, port: int) -> list[str]:
    """Every name is 127.0.0.1: the pinned-IP path without real DNS."""
    return ["127.0.0.1"]


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with HttpServer({"/a.jpg": IMAGE}) as running:
        yield running


def wait_until_finished(server: HttpServer, timeout: float = 5.0) -> None:
    """Let the server threads notice a cut connection before reading their records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(r.completed or r.error for r in server.responses):
            return
        time.sleep(0.02)


async def test_fetch_ok_with_allow_private(server: HttpServer) -> None:
    async with SafeHttp(OPEN) as http:
        fetched = await http.fetch(server.url("/a.jpg?size=2"))
        by_name = await http.fetch(f"http://localhost:{server.port}/a.jpg")
    assert fetched.data == JPEG and by_name.data == JPEG
    assert fetched.content_type == "image/jpeg"
    assert fetched.final_url == server.url("/a.jpg?size=2")
    first = server.requests[0]
    assert first.method == "GET" and first.path == "/a.jpg?size=2"
    assert first.headers["user-agent"] == "facelens/0.1"
    assert "cookie" not in first.headers and "authorization" not in first.headers


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "127.1", "[::1]", "[::ffff:127.0.0.1]"],
)
async def test_loopback_spellings_are_refused_and_never_reached(
    server: HttpServer, host: str
) -> None:
    async with SafeHttp(AddressPolicy()) as http:
        with pytest.raises(UrlNotAllowed, match="loopback address"):
            await http.fetch(f"http://{host}:{server.port}/a.jpg")
        response = await http.post(f"http://{host}:{server.port}/cb", b"{}", {})
    assert response.http_status is None and "loopback address" in response.error
    assert server.connections == 0 and server.requests == []


async def test_ipv6_loopback_with_allow_private() -> None:
    with HttpServer({"/a.jpg": IMAGE}, host="::1") as server:

        async def v6_resolver(host: str, port: int) -> list[str]:
            return ["::1"]

        async with SafeHttp(OPEN, resolver=v6_resolver) as http:
            assert (await http.fetch(server.url("/a.jpg"))).data == JPEG
            assert (await http.fetch(f"http://images6.test:{server.port}/a.jpg")).data == JPEG
        async with SafeHttp(AddressPolicy()) as strict:
            with pytest.raises(UrlNotAllowed, match="loopback"):
                await strict.fetch(server.url("/a.jpg"))
    assert [r.headers["host"] for r in server.requests] == [
        f"[::1]:{server.port}",
        f"images6.test:{server.port}",
    ]


async def test_pinned_ip_keeps_the_host_header() -> None:
    with HttpServer({"/a.jpg": IMAGE}) as server:
        async with SafeHttp(OPEN, resolver=loopback_resolver) as http:
            fetched = await http.fetch(f"http://images.test:{server.port}/a.jpg")
            posted = await http.post(f"http://hooks.test:{server.port}/cb", b"{}", {})
    assert fetched.data == JPEG and posted.http_status == 404
    assert [r.headers["host"] for r in server.requests] == [
        f"images.test:{server.port}",
        f"hooks.test:{server.port}",
    ]


async def test_https_uses_sni_and_verifies_the_original_name(tmp_path: Path) -> None:
    ca = TestCA(tmp_path)
    with HttpServer({"/a.jpg": IMAGE}, tls=ca.server_context("images.test")) as server:
        client = ca.client_context()
        async with SafeHttp(OPEN, resolver=loopback_resolver, ssl_context=client) as http:
            fetched = await http.fetch(f"https://images.test:{server.port}/a.jpg")
            for wrong in (f"https://other.test:{server.port}/a.jpg", server.url("/a.jpg")):
                with pytest.raises(ImageDownloadFailed, match="TLS handshake"):
                    await http.fetch(wrong)
        async with SafeHttp(OPEN, resolver=loopback_resolver) as default_trust:
            with pytest.raises(ImageDownloadFailed, match="TLS handshake"):
                await default_trust.fetch(f"https://images.test:{server.port}/a.jpg")
    assert fetched.data == JPEG
    assert server.sni_names[0] == "images.test" and "other.test" in server.sni_names
    assert [r.headers["host"] for r in server.requests] == [f"images.test:{server.port}"]


# redirects


async def test_three_redirects_are_followed(server: HttpServer) -> None:
    server.route("/r1", redirect(server.url("/r2"), 301))
    server.route("/r2", redirect("/r3", 307))  # relative
    server.route("/r3", redirect("r4?x=1", 308))
    server.route("/r4", redirect(server.url("/a.jpg"), 303))
    async with SafeHttp(OPEN) as http:
        with pytest.raises(ImageDownloadFailed, match=r"too many redirects \(more than 3\)"):
            await http.fetch(server.url("/r1"))
        fetched = await http.fetch(server.url("/r2"))
    assert fetched.data == JPEG and fetched.final_url == server.url("/a.jpg")
    paths = [r.path for r in server.requests]
    assert paths == ["/r1", "/r2", "/r3", "/r4?x=1", "/r2", "/r3", "/r4?x=1", "/a.jpg"]
    assert server.connections == len(paths)  # one per request: no TLS session is reused


async def test_each_hop_is_checked_again() -> None:
    """Only images.test is allow-listed: its redirect to another name or a bare IP is refused."""
    with HttpServer({"/a.jpg": IMAGE}) as server:
        port = server.port
        server.route("/to-name", redirect(f"http://other.test:{port}/a.jpg"))
        server.route("/to-ip", redirect(f"http://127.0.0.1:{port}/a.jpg"))
        server.route("/to-decimal", redirect(f"http://2130706433:{port}/a.jpg"))
        server.route("/to-metadata", redirect("http://169.254.169.254/latest/meta-data/"))
        server.route("/to-file", redirect("file:///etc/passwd"))
        server.route("/to-self", redirect("/a.jpg"))
        policy = AddressPolicy(allowlist=("images.test",))
        async with SafeHttp(policy, resolver=loopback_resolver) as http:
            for path in ("/to-name", "/to-ip", "/to-decimal", "/to-metadata", "/to-file"):
                with pytest.raises(UrlNotAllowed):
                    await http.fetch(f"http://images.test:{port}{path}")
            assert (await http.fetch(f"http://images.test:{port}/to-self")).data == JPEG
    assert [r.route for r in server.requests] == [
        "/to-name",
        "/to-ip",
        "/to-decimal",
        "/to-metadata",
        "/to-file",
        "/to-self",
        "/a.jpg",
    ]
    assert {r.headers["host"] for r in server.requests} == {f"images.test:{port}"}


async def test_redirect_without_location_fails(server: HttpServer) -> None:
    server.route("/r", Reply(302))
    async with SafeHttp(OPEN) as http:
        with pytest.raises(ImageDownloadFailed, match="HTTP 302 from image host without"):
            await http.fetch(server.url("/r"))


# statuses and sizes


@pytest.mark.parametrize("status", [404, 403, 500, 503, 204, 304])
async def test_http_errors_say_which(server: HttpServer, status: int) -> None:
    server.route("/x", Reply(status))
    async with SafeHttp(OPEN) as http:
        with pytest.raises(ImageDownloadFailed) as info:
            await http.fetch(server.url("/x?token=SECRET"))
    assert info.value.message == f"HTTP {status} from image host"
    assert info.value.error_code == "IMAGE_DOWNLOAD_FAILED"


async def test_connection_refused(server: HttpServer) -> None:
    async with SafeHttp(OPEN) as http:
        with pytest.raises(ImageDownloadFailed, match="could not connect to the image host"):
            await http.fetch(f"http://127.0.0.1:{free_port()}/a.jpg")


def huge_stream() -> Iterator[bytes]:
    chunk = b"\x00" * 65536
    for _ in range(1024):  # 64 MiB if nobody stops reading
        yield chunk


async def test_content_length_over_the_limit_is_refused_before_the_body(
    server: HttpServer,
) -> None:
    server.route("/big", Reply(200, {"Content-Length": str(1024 * 65536)}, stream=huge_stream))
    async with SafeHttp(OPEN, max_image_bytes=100_000) as http:
        with pytest.raises(ImageTooLarge, match="larger than the limit of 100000 bytes"):
            await http.fetch(server.url("/big"))
    wait_until_finished(server)
    sent = server.responses[0]
    assert not sent.completed and sent.body_bytes < 32 * 1024 * 1024


@pytest.mark.parametrize("limit", [100_000, 1_000_000])
async def test_chunked_body_is_cut_at_the_limit(server: HttpServer, limit: int) -> None:
    server.route("/big", Reply(200, stream=huge_stream))
    server.route("/exact", Reply(200, body=b"x" * limit, chunk_size=4096, chunked=True))
    async with SafeHttp(OPEN, max_image_bytes=limit) as http:
        started = time.monotonic()
        with pytest.raises(ImageTooLarge) as info:
            await http.fetch(server.url("/big"))
        assert time.monotonic() - started < 5
        exact = await http.fetch(server.url("/exact"))
    assert info.value.error_code == "IMAGE_TOO_LARGE" and len(exact.data) == limit
    wait_until_finished(server)
    cut = server.responses[0]
    assert not cut.completed and cut.error  # the server saw the connection go
    assert cut.body_bytes < 32 * 1024 * 1024  # bounded: the kernel buffers, not the body


async def test_reading_stops_right_after_the_limit(server: HttpServer) -> None:
    """Paced so the kernel buffers stay empty: what the server wrote is what we read."""

    def paced() -> Iterator[bytes]:
        for _ in range(4096):
            yield b"\x00" * 16384

    server.route("/paced", Reply(200, stream=paced, chunk_delay=0.002))
    async with SafeHttp(OPEN, max_image_bytes=200_000) as http:
        with pytest.raises(ImageTooLarge):
            await http.fetch(server.url("/paced"))
    wait_until_finished(server)
    cut = server.responses[0]
    assert not cut.completed
    assert 200_000 < cut.body_bytes < 200_000 + 500_000


async def test_trickling_server_is_cut_at_the_total_deadline(server: HttpServer) -> None:
    server.route("/slow", Reply(200, body=b"x" * 1000, chunk_size=1, chunk_delay=0.05))
    async with SafeHttp(OPEN, read_timeout=2.0, total_timeout=0.5) as http:
        started = time.monotonic()
        with pytest.raises(ImageDownloadFailed, match=r"did not finish within 0\.5 s"):
            await http.fetch(server.url("/slow"))
        elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 1.5
    wait_until_finished(server)
    assert server.responses[0].body_bytes < 100


async def test_silent_server_hits_the_read_timeout(server: HttpServer) -> None:
    server.route("/silent", Reply(200, body=b"late", delay=3.0))
    async with SafeHttp(OPEN, read_timeout=0.3, total_timeout=5.0) as http:
        with pytest.raises(ImageDownloadFailed, match=r"stopped sending \(read timeout\)"):
            await http.fetch(server.url("/silent"))


async def test_concurrent_fetches_are_bounded(server: HttpServer) -> None:
    lock = threading.Lock()
    active = [0, 0]  # now, most

    def slow(request: RecordedRequest) -> Reply:
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        time.sleep(0.15)
        with lock:
            active[0] -= 1
        return IMAGE

    server.route("/slow.jpg", slow)
    async with SafeHttp(OPEN, max_concurrent_fetches=2) as http:
        results = await asyncio.gather(*(http.fetch(server.url("/slow.jpg")) for _ in range(6)))
    assert all(r.data == JPEG for r in results)
    assert active[1] == 2


# callbacks


async def test_callback_200_sends_json_and_headers(server: HttpServer) -> None:
    server.route("/cb", Reply(200, body=b"ok"))
    headers = {"webhook-id": "msg_1", "Host": "evil.example", "Content-Type": "text/plain"}
    async with SafeHttp(OPEN) as http:
        response = await http.post(server.url("/cb"), b'{"task_id": "1"}', headers)
    assert (response.http_status, response.error) == (200, "")
    received = server.requests[0]
    assert received.method == "POST" and received.body == b'{"task_id": "1"}'
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-id"] == "msg_1"
    assert received.headers["host"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(500, body=b"boom"), (500, "HTTP 500")),
        (Reply(201), (201, "HTTP 201")),
        (redirect("/elsewhere", 302), (302, "HTTP 302 (redirects are not followed)")),
        (redirect("/elsewhere", 307), (307, "HTTP 307 (redirects are not followed)")),
    ],
)
async def test_callback_non_200_answers(
    server: HttpServer, reply: Reply, expected: tuple[int, str]
) -> None:
    server.route("/cb", reply)
    async with SafeHttp(OPEN) as http:
        response = await http.post(server.url("/cb"), b"{}", {})
    assert (response.http_status, response.error) == expected
    assert [r.path for r in server.requests] == ["/cb"]


async def test_callback_connection_refused_and_timeout(server: HttpServer) -> None:
    server.route("/slow", Reply(200, delay=3.0))
    async with SafeHttp(OPEN, callback_timeout=0.3) as http:
        refused = await http.post(f"http://127.0.0.1:{free_port()}/cb", b"{}", {})
        started = time.monotonic()
        slow = await http.post(server.url("/slow"), b"{}", {})
        elapsed = time.monotonic() - started
    assert refused.http_status is None
    assert refused.error == "could not connect to the callback host"
    assert slow.http_status is None and slow.error == "callback not answered within 0.3 s"
    assert elapsed < 1.5
