"""SafeHttp's address checks with a stubbed resolver: refusals happen before any connection.

No test here reaches a real DNS server or any address outside loopback: the resolver
is a stub, and `no_connections` makes any attempt to open a request fail the test.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx
import pytest

from facelens.adapters.http import Resolver, SafeHttp
from facelens.core.errors import ImageDownloadFailed, UrlNotAllowed
from facelens.core.netpolicy import AddressPolicy
from tests.support.servers import HttpServer, Reply


class StubResolver:
    """Answers from a script, one answer list per call (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers) or [[]]
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


async def failing_resolver(host: str, port: int) -> list[str]:
    raise AssertionError(f"the resolver must not be asked about {host}")


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[httpx.Request]]:
    """Fails any request that reaches the transport, and records it."""
    attempts: list[httpx.Request] = []

    async def refuse(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise AssertionError(f"a connection was attempted to {request.url.host}")

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", refuse)
    yield attempts


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["10.1.2.3"], "private address"),
        (["192.168.0.10"], "private address"),
        (["172.20.0.1"], "private address"),
        (["169.254.169.254"], "link-local address"),
        (["100.100.100.200"], "shared address space (CGNAT)"),
        (["127.0.0.1"], "loopback address"),
        (["::1"], "loopback address"),
        (["fd00:ec2::254"], "private address"),
        (["fe80::1%eth0"], "link-local address"),
        (["::ffff:169.254.169.254"], "link-local address (IPv4-mapped IPv6)"),
        (["64:ff9b::a9fe:a9fe"], "link-local address (NAT64 IPv6)"),
        (["2002:a00:1::1"], "private address (6to4 IPv6)"),
        (["0.0.0.0"], "unspecified address"),
        (["93.184.216.34", "10.0.0.1"], "private address"),  # one bad answer is enough
    ],
)
async def test_refused_answers_never_connect(
    answers: list[str], reason: str, no_connections: list[httpx.Request]
) -> None:
    resolver = StubResolver(answers)
    async with SafeHttp(AddressPolicy(), resolver=resolver) as http:
        with pytest.raises(UrlNotAllowed) as info:
            await http.fetch("https://images.example/cat.jpg?token=SECRET")
        response = await http.post("https://hooks.example/cb?sig=SECRET", b"{}", {})
    assert reason in info.value.message
    assert "images.example" in info.value.message
    assert "SECRET" not in info.value.message
    assert info.value.error_code == "URL_NOT_ALLOWED"
    assert response.http_status is None
    assert response.error.startswith("URL_NOT_ALLOWED: ")
    assert reason in response.error and "SECRET" not in response.error
    assert resolver.calls == [("images.example", 443), ("hooks.example", 443)]
    assert no_connections == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://017700000001/",
        "http://127.1/",
        "http://0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/",
    ],
)
async def test_numeric_hosts_are_checked_without_dns(
    url: str, no_connections: list[httpx.Request]
) -> None:
    async with SafeHttp(AddressPolicy(), resolver=failing_resolver) as http:
        with pytest.raises(UrlNotAllowed, match="forbidden address"):
            await http.fetch(url)
    assert no_connections == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://images.example/a.jpg", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http://user:pw@images.example/", "credentials"),
        ("http://images.example:99999/", "port"),
        ("http://1.2.3.4.5/", "malformed IPv4"),
    ],
)
async def test_bad_url_forms_are_refused(
    url: str, problem: str, no_connections: list[httpx.Request]
) -> None:
    async with SafeHttp(AddressPolicy(allow_private=True), resolver=failing_resolver) as http:
        with pytest.raises(UrlNotAllowed, match=problem):
            await http.fetch(url)
        response = await http.post(url, b"{}", {})
    assert response.http_status is None and response.error.startswith("URL_NOT_ALLOWED: ")


async def test_dns_failures_are_download_failures(no_connections: list[httpx.Request]) -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def hangs(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return []

    async def garbage(host: str, port: int) -> list[str]:
        return ["not-an-address"]

    cases: list[tuple[Resolver, str]] = [
        (nxdomain, "could not resolve the image host 'missing.example'"),
        (hangs, "DNS lookup of the image host timed out"),
        (garbage, "DNS answer for the image host is not an address"),
        (StubResolver([]), "could not resolve the image host 'missing.example'"),
    ]
    for resolver, message in cases:
        async with SafeHttp(
            AddressPolicy(allow_private=True), resolver=resolver, connect_timeout=0.2
        ) as http:
            with pytest.raises(ImageDownloadFailed) as info:
                await http.fetch("http://missing.example/a.jpg")
            assert info.value.message == message
            response = await http.post("http://missing.example/cb", b"{}", {})
            assert response.http_status is None
            assert "callback host" in response.error
    assert no_connections == []


async def test_refusal_is_for_the_whole_host_before_any_connection() -> None:
    """127.0.0.1 is allow-listed, 10.0.0.1 is not: the host is refused, nothing connects."""
    with HttpServer({"/a.jpg": Reply(200, body=b"img")}) as server:
        resolver = StubResolver(["127.0.0.1", "10.0.0.1"])
        policy = AddressPolicy(allowlist=("127.0.0.0/8",))
        async with SafeHttp(policy, resolver=resolver) as http:
            with pytest.raises(UrlNotAllowed, match="private address"):
                await http.fetch(f"http://mixed.test:{server.port}/a.jpg")
            response = await http.post(f"http://mixed.test:{server.port}/a.jpg", b"{}", {})
        assert response.error.startswith("URL_NOT_ALLOWED")
        assert server.connections == 0 and server.requests == []


async def test_dns_rebinding_cannot_switch_the_address() -> None:
    """Resolved once per request and connected to that very address.

    The stub answers loopback (allow-listed here) the first time, then the metadata
    address: the first fetch reaches the local server, the second is refused before
    connecting; neither looks the name up twice.
    """
    with HttpServer({"/a.jpg": Reply(200, {"Content-Type": "image/jpeg"}, b"img")}) as server:
        resolver = StubResolver(["127.0.0.1"], ["169.254.169.254"])
        policy = AddressPolicy(allowlist=("127.0.0.1/32",))
        async with SafeHttp(policy, resolver=resolver) as http:
            fetched = await http.fetch(f"http://rebind.test:{server.port}/a.jpg")
            assert fetched.data == b"img"
            with pytest.raises(UrlNotAllowed, match="link-local"):
                await http.fetch(f"http://rebind.test:{server.port}/a.jpg")
        assert len(resolver.calls) == 2
        assert [r.headers["host"] for r in server.requests] == [f"rebind.test:{server.port}"]


async def test_allowlisted_host_may_resolve_to_private_addresses() -> None:
    with HttpServer({"/a.jpg": Reply(200, body=b"img")}) as server:
        policy = AddressPolicy(allowlist=("images.corp",))
        async with SafeHttp(policy, resolver=StubResolver(["127.0.0.1"])) as http:
            assert (await http.fetch(f"http://images.corp:{server.port}/a.jpg")).data == b"img"
            with pytest.raises(UrlNotAllowed):
                await http.fetch(f"http://other.corp:{server.port}/a.jpg")
        assert len(server.requests) == 1


def test_limits_must_be_positive() -> None:
    for bad in ({"max_image_bytes": 0}, {"max_redirects": -1}, {"max_concurrent_fetches": 0}):
        with pytest.raises(ValueError):
            SafeHttp(AddressPolicy(), **bad)  # type: ignore[arg-type]
