"""Everything facelens sends over the network: image downloads and callback POSTs.

The only module that imports httpx. Every request goes through the same steps:

1. `validate_url` checks the form (http/https, no credentials, sane host and port);
2. the host is resolved ONCE (numeric spellings are parsed, not looked up) and every
   address is checked against the `AddressPolicy`;
3. the request is sent to the checked IP itself, with the original `Host` header and,
   for https, the original name as TLS SNI and as the name the certificate must match.
   A second DNS answer (rebinding) therefore never matters.

httpx's client layer is bypassed on purpose: we talk to its transport directly, so no
cookie jar leaks between tenants, no `.netrc` or proxy environment applies, and
redirects are followed here, hop by hop, each one checked again. Connections are not
kept alive, so a TLS connection verified for one name is never reused for another.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from facelens.adapters.closing import AsyncClosing
from facelens.application.ports import CallbackResponse, FetchedImage
from facelens.core.errors import (
    ImageDownloadFailed,
    ImageTooLarge,
    TaskFailure,
    UrlNotAllowed,
)
from facelens.core.netpolicy import AddressPolicy, IPAddress, parse_host_ip, validate_url

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the addresses it resolves to, as strings (like getaddrinfo)."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CALLER_HEADERS_IGNORED = frozenset({"host", "content-length", "transfer-encoding", "connection"})


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo in a thread), TCP answers only."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL whose host has been resolved and checked: where the request may go."""

    url: httpx.URL
    host: str
    ips: tuple[IPAddress, ...]


def _failure(exc: httpx.HTTPError, what: str) -> str:
    """A readable, URL-free description of a transport error."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connecting to the {what} timed out"
    if isinstance(exc, httpx.ReadTimeout):
        return f"the {what} stopped sending (read timeout)"
    if isinstance(exc, httpx.WriteTimeout):
        return f"sending to the {what} timed out"
    if isinstance(exc, httpx.TimeoutException):
        return f"the {what} timed out"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if "CERTIFICATE" in text.upper() or "SSL" in text.upper() or "TLS" in text.upper():
            return f"TLS handshake with the {what} failed (certificate not trusted or wrong name)"
        return f"could not connect to the {what}"
    if isinstance(exc, httpx.DecodingError):
        return f"the {what} sent a body that cannot be decoded (Content-Encoding)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the {what} broke the HTTP protocol or closed the connection"
    return f"the connection to the {what} failed"


class SafeHttp(AsyncClosing):
    """SSRF-guarded HTTP for untrusted URLs; implements ImageFetcher and CallbackSender.

    Images: at most `max_redirects` redirects (each re-checked), `max_image_bytes`
    (refused early on Content-Length, and the stream is cut as soon as it passes the
    limit), connect/read timeouts per operation and `total_timeout` for the whole
    download, at most `max_concurrent_fetches` downloads at once.
    Callbacks: same address rules, no redirects, `callback_timeout` in all, and any
    failure is reported in the CallbackResponse rather than raised.
    `ssl_context` replaces the default trust store (certifi, or SSL_CERT_FILE), for
    operators with a private CA and for tests.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        max_image_bytes: int = 20_000_000,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        total_timeout: float = 30.0,
        max_redirects: int = 3,
        max_concurrent_fetches: int = 8,
        callback_timeout: float = 10.0,
        user_agent: str = "facelens/0.1",
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_image_bytes < 1 or max_redirects < 0 or max_concurrent_fetches < 1:
            raise ValueError("SafeHttp limits must be positive")
        self._policy = policy
        self._max_image_bytes = max_image_bytes
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._total_timeout = total_timeout
        self._max_redirects = max_redirects
        self._callback_timeout = callback_timeout
        self._user_agent = user_agent
        self._resolver: Resolver = resolver or system_resolver
        self._fetch_slots = asyncio.Semaphore(max_concurrent_fetches)
        self._transport = httpx.AsyncHTTPTransport(
            verify=ssl_context if ssl_context is not None else True,
            http1=True,
            http2=False,
            retries=0,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        )

    async def close(self) -> None:
        await self._transport.aclose()

    # images

    async def fetch(self, url: str) -> FetchedImage:
        """Download an image; raises UrlNotAllowed, ImageDownloadFailed or ImageTooLarge."""
        async with self._fetch_slots:
            try:
                async with asyncio.timeout(self._total_timeout):
                    return await self._fetch(url)
            except TimeoutError:
                raise ImageDownloadFailed(
                    f"image download did not finish within {self._total_timeout:g} s"
                ) from None

    async def _fetch(self, url: str) -> FetchedImage:
        current = url
        for hop in range(self._max_redirects + 1):
            target = await self._pin(current, "image")
            response = await self._send(target, "GET", self._image_headers(), b"", "image host")
            try:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    current = self._next_hop(target, response, hop)
                    continue
                if status != 200:  # 204, 206 & co. carry no whole image either
                    raise ImageDownloadFailed(f"HTTP {status} from image host")
                data = await self._read_limited(response)
                content_type = response.headers.get("content-type", "")
                return FetchedImage(data=data, content_type=content_type, final_url=str(target.url))
            finally:
                await response.aclose()
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def stream(
        self,
        url: str,
        write: Callable[[bytes], object],
        *,
        max_bytes: int,
        total_timeout: float,
        what: str = "video",
    ) -> str:
        """Download a large body chunk by chunk into `write` (never whole in memory),
        under the same address, redirect and timeout rules as images but with its own
        byte limit and deadline. Returns the Content-Type. Raises UrlNotAllowed,
        ImageDownloadFailed or ImageTooLarge (the caller renames them for its kind)."""
        async with self._fetch_slots:
            try:
                async with asyncio.timeout(total_timeout):
                    return await self._stream(url, write, max_bytes, what)
            except TimeoutError:
                raise ImageDownloadFailed(
                    f"{what} download did not finish within {total_timeout:g} s"
                ) from None

    async def _stream(
        self, url: str, write: Callable[[bytes], object], limit: int, what: str
    ) -> str:
        current = url
        for hop in range(self._max_redirects + 1):
            target = await self._pin(current, what)
            headers = {**self._image_headers(), "Accept": f"{what}/*, */*;q=0.5"}
            response = await self._send(target, "GET", headers, b"", f"{what} host")
            try:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    current = self._next_hop(target, response, hop)
                    continue
                if status != 200:
                    raise ImageDownloadFailed(f"HTTP {status} from {what} host")
                declared = response.headers.get("content-length", "").strip()
                if declared.isdigit() and int(declared) > limit:
                    raise ImageTooLarge(f"{what} is larger than the limit of {limit} bytes")
                received = 0
                try:
                    async for chunk in response.aiter_bytes():
                        received += len(chunk)
                        if received > limit:
                            raise ImageTooLarge(f"{what} is larger than the limit of {limit} bytes")
                        write(chunk)
                except httpx.HTTPError as exc:
                    raise ImageDownloadFailed(_failure(exc, f"{what} host")) from None
                return str(response.headers.get("content-type", ""))
            finally:
                await response.aclose()
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _image_headers(self) -> dict[str, str]:
        return {
            "User-Agent": self._user_agent,
            "Accept": "image/*, */*;q=0.5",
            "Accept-Encoding": "identity",
        }

    def _next_hop(self, target: _Target, response: httpx.Response, hop: int) -> str:
        status = response.status_code
        location = response.headers.get("location", "")
        if not location:
            raise ImageDownloadFailed(f"HTTP {status} from image host without a Location")
        if hop >= self._max_redirects:
            raise ImageDownloadFailed(f"too many redirects (more than {self._max_redirects})")
        try:
            return str(target.url.join(location))
        except httpx.InvalidURL:
            raise UrlNotAllowed("image URL refused: redirect to a malformed URL") from None

    async def _read_limited(self, response: httpx.Response) -> bytes:
        """The body, refusing early on Content-Length and cutting the stream at the limit."""
        limit = self._max_image_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise ImageTooLarge(f"image is larger than the limit of {limit} bytes")
        data = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > limit:
                    raise ImageTooLarge(f"image is larger than the limit of {limit} bytes")
        except httpx.HTTPError as exc:
            raise ImageDownloadFailed(_failure(exc, "image host")) from None
        return bytes(data)

    # callbacks

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> CallbackResponse:
        """POST a callback once. Only the status is read; redirects are not followed.

        Never raises for network trouble: a refused address is reported as
        "URL_NOT_ALLOWED: ..." with no status, other failures as readable text.
        """
        sent = {
            key: value
            for key, value in headers.items()
            if key.lower() not in _CALLER_HEADERS_IGNORED | {"content-type"}
        }
        sent["Content-Type"] = "application/json"
        sent.setdefault("User-Agent", self._user_agent)
        try:
            async with asyncio.timeout(self._callback_timeout):
                target = await self._pin(url, "callback")
                response = await self._send(target, "POST", sent, body, "callback host")
                await response.aclose()
        except TimeoutError:
            return CallbackResponse(
                None, f"callback not answered within {self._callback_timeout:g} s"
            )
        except UrlNotAllowed as refused:
            return CallbackResponse(None, f"{refused.error_code}: {refused.message}")
        except TaskFailure as failure:
            return CallbackResponse(None, failure.message)
        except (OSError, httpx.HTTPError) as exc:  # not expected: _send maps these already
            return CallbackResponse(None, f"callback failed ({type(exc).__name__})")
        status = response.status_code
        if status == 200:
            return CallbackResponse(status, "")
        if status in REDIRECT_STATUSES:
            return CallbackResponse(status, f"HTTP {status} (redirects are not followed)")
        return CallbackResponse(status, f"HTTP {status}")

    # shared steps

    async def _pin(self, url: str, purpose: str) -> _Target:
        """Validate the URL, resolve its host once and check every address."""
        try:
            validate_url(url)
        except ValueError as exc:
            raise UrlNotAllowed(f"{purpose} URL refused: {exc}") from None
        try:
            parsed = httpx.URL(url)
            host = parsed.raw_host.decode("ascii")
        except (httpx.InvalidURL, UnicodeError):
            raise UrlNotAllowed(f"{purpose} URL refused: malformed URL") from None
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        literal = parse_host_ip(host)
        ips = (literal,) if literal is not None else await self._lookup(host, port, purpose)
        reason = self._policy.decide(host, ips)
        if reason is not None:
            how = "is" if literal is not None else "resolves to"
            raise UrlNotAllowed(
                f"{purpose} URL refused: host {host} {how} a forbidden address: {reason}"
            )
        return _Target(url=parsed, host=host, ips=ips)

    async def _lookup(self, host: str, port: int, purpose: str) -> tuple[IPAddress, ...]:
        try:
            async with asyncio.timeout(self._connect_timeout):
                answers = await self._resolver(host, port)
        except TimeoutError:
            raise ImageDownloadFailed(f"DNS lookup of the {purpose} host timed out") from None
        except OSError:
            raise ImageDownloadFailed(f"could not resolve the {purpose} host {host!r}") from None
        ips: list[IPAddress] = []
        for answer in answers:
            ip = parse_host_ip(answer)
            if ip is None:
                raise ImageDownloadFailed(f"DNS answer for the {purpose} host is not an address")
            if ip not in ips:
                ips.append(ip)
        if not ips:
            raise ImageDownloadFailed(f"could not resolve the {purpose} host {host!r}")
        return tuple(ips)

    async def _send(
        self, target: _Target, method: str, headers: Mapping[str, str], body: bytes, what: str
    ) -> httpx.Response:
        """Open the request on the first checked address that accepts a connection.

        The URL's host is replaced by the IP; Host and SNI keep the original name, and
        for https the certificate is verified against that name.
        """
        timeouts = {
            "connect": self._connect_timeout,
            "read": self._read_timeout,
            "write": self._read_timeout,
            "pool": self._connect_timeout,
        }
        extensions: dict[str, object] = {"timeout": timeouts}
        if target.url.scheme == "https" and parse_host_ip(target.host) is None:
            extensions["sni_hostname"] = target.host
        all_headers = {**headers, "Host": target.url.netloc.decode("ascii")}
        last: httpx.HTTPError | None = None
        for ip in target.ips:
            request = httpx.Request(
                method,
                target.url.copy_with(host=str(ip)),
                headers=all_headers,
                content=body if method != "GET" else None,
                extensions=extensions,
            )
            try:
                response = await self._transport.handle_async_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = exc
                continue
            except httpx.HTTPError as exc:
                raise ImageDownloadFailed(_failure(exc, what)) from None
            response.request = request
            return response
        assert last is not None
        raise ImageDownloadFailed(_failure(last, what)) from None
