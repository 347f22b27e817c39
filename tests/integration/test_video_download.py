"""Video downloads against a real loopback server: streamed to a temporary file under
the data dir, with the URL rules, the byte limit and the deadline; the file is gone
when the block ends, whatever ends it."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facelens.adapters.http import SafeHttp
from facelens.adapters.video.download import VideoDownloads
from facelens.core.errors import UrlNotAllowed, VideoFailure
from facelens.core.netpolicy import AddressPolicy
from tests.support.servers import HttpServer, Reply, redirect

OPEN = AddressPolicy(allow_private=True)
BODY = os.urandom(300_000)


def big_stream(total: int, piece: int = 1 << 20) -> Iterator[bytes]:
    block = b"\x00" * piece
    for _ in range(total // piece):
        yield block


@pytest.fixture
def server() -> Iterator[HttpServer]:
    routes = {
        "/v.mp4": Reply(200, {"Content-Type": "video/mp4"}, BODY, chunk_size=16_384),
        "/hop": redirect("/v.mp4"),
        "/big": Reply(200, {"Content-Type": "video/mp4"}, stream=lambda: big_stream(100 << 20)),
        "/slow": Reply(200, {}, b"x" * 10_000, chunk_size=100, chunk_delay=0.05),
        "/missing": Reply(404),
    }
    with HttpServer(routes) as running:
        yield running


async def test_streams_to_a_temp_file_that_is_always_deleted(
    server: HttpServer, tmp_path: Path
) -> None:
    async with SafeHttp(OPEN) as http:
        downloads = VideoDownloads(http, tmp_path / "video-tmp")
        async with downloads.download(server.url("/hop")) as path:
            assert path.parent == tmp_path / "video-tmp"
            assert path.read_bytes() == BODY
            assert (path.stat().st_mode & 0o777) == 0o600
        assert not path.exists()
        with pytest.raises(RuntimeError):
            async with downloads.download(server.url("/v.mp4")) as path:
                raise RuntimeError("the task broke")
        assert not path.exists()
    assert list((tmp_path / "video-tmp").iterdir()) == []


async def test_a_large_body_never_sits_in_memory(server: HttpServer, tmp_path: Path) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    async with SafeHttp(OPEN) as http:
        downloads = VideoDownloads(http, tmp_path, max_bytes=300 << 20)
        async with downloads.download(server.url("/big")) as path:
            assert path.stat().st_size == 100 << 20
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 60_000, f"memory grew by {grown_kb} kB for a 100 MB download"


@pytest.mark.parametrize(
    ("route", "limits", "code", "words"),
    [
        ("/big", {"max_bytes": 5 << 20}, "VIDEO_TOO_LARGE", "limit of 5242880"),
        ("/slow", {"total_timeout": 0.5}, "VIDEO_DOWNLOAD_FAILED", "within 0.5 s"),
        ("/missing", {}, "VIDEO_DOWNLOAD_FAILED", "HTTP 404"),
    ],
)
async def test_limits_give_video_codes_and_leave_no_file(
    server: HttpServer, tmp_path: Path, route: str, limits: dict[str, float], code: str, words: str
) -> None:
    async with SafeHttp(OPEN) as http:
        downloads = VideoDownloads(http, tmp_path, **limits)  # type: ignore[arg-type]
        with pytest.raises(VideoFailure) as failure:
            async with downloads.download(server.url(route)):
                pass
    assert failure.value.error_code == code and words in failure.value.message
    assert os.listdir(tmp_path) == []


async def test_private_addresses_are_refused_without_a_request(
    server: HttpServer, tmp_path: Path
) -> None:
    async with SafeHttp(AddressPolicy()) as http:
        with pytest.raises(UrlNotAllowed):
            async with VideoDownloads(http, tmp_path).download(server.url("/v.mp4")):
                pass
    assert server.requests == [] and os.listdir(tmp_path) == []


def test_sweep_removes_only_stale_leftovers(tmp_path: Path) -> None:
    old = tmp_path / "video-abc.part"
    fresh = tmp_path / "video-def.part"
    other = tmp_path / "keep.txt"
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    os.utime(old, (time.time() - 90_000, time.time() - 90_000))
    assert VideoDownloads(SafeHttp(OPEN), tmp_path).sweep() == 1
    assert not old.exists() and fresh.exists() and other.exists()
