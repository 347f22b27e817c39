"""Video downloads: streamed to a temporary file under the data dir, always deleted.

A video may be hundreds of megabytes, so unlike an image it is never held in memory:
`SafeHttp.stream` (same SSRF policy, pinned addresses and per-hop redirect checks as
images) hands each chunk to the file as it arrives, under `max_bytes` and a total
deadline of its own. The file lives only inside `download()`'s `async with`: it is
deleted when the block ends, however it ends. A process killed with -9 cannot delete
anything, so `sweep()` (run when a worker starts) removes files left by dead ones
after `stale_after_s`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from facelens.adapters.http import SafeHttp
from facelens.core.errors import (
    ImageDownloadFailed,
    ImageTooLarge,
    VideoDownloadFailed,
    VideoTooLarge,
)

log = logging.getLogger("facelens.video")
PREFIX = "video-"
SUFFIX = ".part"


@dataclass(frozen=True, slots=True)
class VideoDownloads:
    http: SafeHttp
    directory: Path
    _: KW_ONLY
    max_bytes: int = 500_000_000
    total_timeout: float = 600.0
    stale_after_s: float = 86_400.0

    @contextlib.asynccontextmanager
    async def download(self, url: str) -> AsyncIterator[Path]:
        """The video at `url` as a local file, for the duration of the block.

        Raises UrlNotAllowed, VideoDownloadFailed or VideoTooLarge."""
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=PREFIX, suffix=SUFFIX, dir=self.directory)
        path = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                await self._fetch(url, out.write)
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    async def _fetch(self, url: str, write: Callable[[bytes], object]) -> None:
        try:
            await self.http.stream(
                url, write, max_bytes=self.max_bytes, total_timeout=self.total_timeout
            )
        except ImageTooLarge:
            raise VideoTooLarge(
                f"the video is larger than the download limit of {self.max_bytes} bytes"
            ) from None
        except ImageDownloadFailed as failure:
            raise VideoDownloadFailed(failure.message) from None
        except OSError as exc:  # the disk under the data dir: full, read-only...
            log.warning("video download could not be stored: %s", exc)
            raise VideoDownloadFailed("the video could not be stored on the server") from None

    def sweep(self, now: float | None = None) -> int:
        """Delete temporary videos older than `stale_after_s` (left by killed workers)."""
        if not self.directory.is_dir():
            return 0
        limit = (time.time() if now is None else now) - self.stale_after_s
        removed = 0
        for path in self.directory.glob(f"{PREFIX}*{SUFFIX}"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
        return removed
