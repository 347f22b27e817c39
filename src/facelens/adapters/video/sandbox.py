"""The worker's side of decoding: one child process per video (or segment), under limits.

A hostile file can crash FFmpeg, make it allocate without end or spin forever. None of
that may reach the worker, so demuxing and decoding happen in a child process
(`child.py`) that sets kernel limits on itself before touching the file: address space
(`memory_bytes`), CPU seconds (`cpu_seconds`), no file writes, no core dumps. The
child gets a clean environment (no database URL, no keys) and no inherited descriptors.

Here the parent enforces what the kernel cannot: a wall deadline per message
(`stall_seconds`: a child that neither works nor exits, e.g. blocked, is killed) and
bounds on everything it reads back. Whatever ends the child (its own error message,
a signal, a limit, a deadline), the caller gets a `VideoFailure` with a stable code,
and the child is killed and reaped when the session closes.

Frames travel through the pipe as raw RGB; the child decodes the next frame while the
worker analyses the current one (the pipe's back-pressure keeps it one frame ahead).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from facelens.adapters.closing import AsyncClosing
from facelens.adapters.video.protocol import ProtocolError, read_message
from facelens.core.errors import (
    NoVideoStream,
    VideoDecodeFailed,
    VideoFailure,
    VideoFormatUnsupported,
    VideoTooLarge,
    VideoTooLong,
)
from facelens.core.video import Sampling, VideoFrame, VideoInfo, VideoPlan

log = logging.getLogger("facelens.video")

_FAILURES: dict[str, type[VideoFailure]] = {
    cls.error_code: cls
    for cls in (
        NoVideoStream,
        VideoDecodeFailed,
        VideoFormatUnsupported,
        VideoTooLarge,
        VideoTooLong,
    )
}
_ENV_KEPT = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TMPDIR")


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_pixels: int = 50_000_000
    max_seconds: int = 3600
    memory_bytes: int = 3 << 30
    """Address-space limit of the child (RLIMIT_AS)."""
    cpu_seconds: int = 900
    """CPU-time limit of the child (RLIMIT_CPU): one video or segment."""
    stall_seconds: float = 60.0
    """Longest wait for the child's next message."""


class VideoSession(AsyncClosing):
    """One running child: `plan` once started, then `frames()`. Use as `async with`."""

    def __init__(self, process: asyncio.subprocess.Process, limits: DecodeLimits) -> None:
        self._process = process
        self._limits = limits
        self._stderr = bytearray()
        self._drain = asyncio.create_task(self._keep_stderr())
        self.plan: VideoPlan | None = None

    async def close(self) -> None:
        """Kill the child if it still runs, reap it and close its pipes."""
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        self._drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._drain
        # Reading both pipes to their end lets asyncio close the transport now, not in
        # a finalizer after the event loop is gone.
        with contextlib.suppress(OSError, ValueError, TimeoutError):
            async with asyncio.timeout(10):
                await self._process.communicate()
        await self._process.wait()

    async def start(self) -> VideoPlan:
        header, _ = await self._expect()
        if header.get("kind") != "info":
            raise VideoDecodeFailed("the decoder sent no video description")
        self.plan = _plan(header)
        return self.plan

    async def frames(self) -> AsyncIterator[VideoFrame]:
        """The analysed frames, in time order, until the child reports the end."""
        assert self.plan is not None, "start() first"
        width, height = self.plan.info.width, self.plan.info.height
        while True:
            header, payload = await self._expect()
            kind = header.get("kind")
            if kind == "end":
                return
            if kind != "frame":
                raise VideoDecodeFailed("the decoder sent an unexpected message")
            if header.get("width") != width or header.get("height") != height:
                raise VideoDecodeFailed("a frame's size differs from the video's declared size")
            if len(payload) != width * height * 3:
                raise VideoDecodeFailed("a frame's pixel data has the wrong length")
            pixels = np.frombuffer(payload, dtype=np.uint8).reshape(height, width, 3)
            yield VideoFrame(int(header["index"]), int(header["timestamp_ms"]), pixels)

    async def _expect(self) -> tuple[dict[str, Any], bytes]:
        """The next message; a child error, death, silence or garbage raises VideoFailure."""
        stdout = self._process.stdout
        assert stdout is not None
        max_payload = self._limits.max_pixels * 3
        try:
            async with asyncio.timeout(self._limits.stall_seconds):
                message = await read_message(stdout, max_payload)
        except TimeoutError:
            raise VideoDecodeFailed(
                f"the decoder produced nothing for {self._limits.stall_seconds:g} s"
            ) from None
        except ProtocolError as exc:
            message = None
            if self._process.returncode is None:
                raise VideoDecodeFailed(f"decoder output unreadable: {exc}") from None
        if message is None:
            raise await self._death()
        header, payload = message
        if header.get("kind") == "error":
            code = str(header.get("code", ""))
            text = str(header.get("message", "the video cannot be decoded"))[:500]
            raise _FAILURES.get(code, VideoDecodeFailed)(text)
        return header, payload

    async def _death(self) -> VideoFailure:
        """Why the child's output ended without an `end` message."""
        try:
            async with asyncio.timeout(5):
                code = await self._process.wait()
        except TimeoutError:
            return VideoDecodeFailed("the decoder stopped talking")
        detail = bytes(self._stderr[-300:]).decode("utf-8", "replace").strip()
        if detail:
            log.info("video decoder stderr: %s", detail)
        if code == -signal.SIGXCPU or code == -signal.SIGKILL:
            return VideoDecodeFailed(
                f"decoding was stopped at its CPU-time limit ({self._limits.cpu_seconds} s)"
                if code == -signal.SIGXCPU
                else "the decoder was killed (CPU-time or memory limit)"
            )
        if code < 0:
            return VideoDecodeFailed(f"the decoder crashed (signal {-code})")
        return VideoDecodeFailed(f"the decoder exited without a result (status {code})")

    async def _keep_stderr(self) -> None:
        """Drain the child's stderr (so it never blocks on it), keeping the tail."""
        stderr = self._process.stderr
        assert stderr is not None
        while chunk := await stderr.read(4096):
            self._stderr += chunk
            del self._stderr[:-4096]


def _plan(header: dict[str, Any]) -> VideoPlan:
    try:
        info = VideoInfo.from_stored(header["video"])
        times = [int(t) for t in header["timestamps"]]
    except (KeyError, TypeError, ValueError):
        info = None
    if info is None:
        raise VideoDecodeFailed("the decoder sent a malformed video description")
    return VideoPlan(info, times)


class VideoDecoder:
    """Starts decoding children; stateless, safe to share across tasks."""

    def __init__(self, limits: DecodeLimits | None = None) -> None:
        self.limits = limits or DecodeLimits()

    async def probe(self, path: str, sampling: Sampling) -> VideoPlan:
        """Check and describe the video; no frame is decoded."""
        async with await self.open(path, sampling, probe_only=True) as session:
            assert session.plan is not None
            return session.plan

    async def open(
        self,
        path: str,
        sampling: Sampling,
        lo_ms: int = 0,
        hi_ms: int | None = None,
        *,
        probe_only: bool = False,
    ) -> VideoSession:
        """Start a child for the frames of [lo_ms, hi_ms); its plan is read already."""
        request = {
            "path": path,
            "sampling": {
                "interval_ms": sampling.interval_ms,
                "max_frames": sampling.max_frames,
                "start_ms": sampling.start_ms,
                "end_ms": sampling.end_ms,
            },
            "lo_ms": lo_ms,
            "hi_ms": hi_ms,
            "probe_only": probe_only,
            "max_pixels": self.limits.max_pixels,
            "max_seconds": self.limits.max_seconds,
            "memory_bytes": self.limits.memory_bytes,
            "cpu_seconds": self.limits.cpu_seconds,
        }
        env = {key: os.environ[key] for key in _ENV_KEPT if key in os.environ}
        env.update({"MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1", "PYTHONNOUSERSITE": "1"})
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "facelens.adapters.video.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
            limit=1 << 20,
        )
        session = VideoSession(process, self.limits)
        try:
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                process.stdin.write(json.dumps(request).encode() + b"\n")
                await process.stdin.drain()
                process.stdin.close()
            await session.start()  # a child that died at once is reported here
        except BaseException:
            await session.close()
            raise
        return session
