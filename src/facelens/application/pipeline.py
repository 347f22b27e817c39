"""Fetch, decode, detect: one image's way through the service.

Decoding and inference are CPU-bound and release the GIL (Pillow, ONNX Runtime), so
they run in worker threads; a semaphore caps how many inferences run at once because
each one already uses every core it was given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from facelens.application.ports import (
    Clock,
    Detector,
    FetchedImage,
    ImageDecoder,
    ImageFetcher,
)
from facelens.application.stage_timer import StageTimer
from facelens.core.domain import DecodedImage, DetectOptions, Face, TaskOutcome
from facelens.core.errors import TaskFailure

log = logging.getLogger("facelens.pipeline")


@dataclass(frozen=True, slots=True)
class Analysis:
    faces: list[Face]
    width: int
    height: int


class ImagePipeline:
    def __init__(
        self,
        fetcher: ImageFetcher,
        decoder: ImageDecoder,
        detector: Detector,
        max_parallel_inference: int = 1,
    ) -> None:
        self._fetcher = fetcher
        self._decoder = decoder
        self._detector = detector
        self._inference = asyncio.Semaphore(max_parallel_inference)

    async def detect(self, image: DecodedImage, options: DetectOptions) -> list[Face]:
        """Detection of decoded pixels (video frames), under the same inference cap."""
        async with self._inference:
            return await asyncio.to_thread(self._detector.detect, image, options)

    async def fetch(self, url: str, timer: StageTimer | None = None) -> FetchedImage:
        with (timer or StageTimer()).measure("fetch"):
            return await self._fetcher.fetch(url)

    async def from_url(
        self, url: str, options: DetectOptions, timer: StageTimer | None = None
    ) -> Analysis:
        timer = timer or StageTimer()
        fetched = await self.fetch(url, timer)
        return await self.from_bytes(fetched.data, fetched.content_type, options, timer)

    async def from_bytes(
        self,
        data: bytes,
        content_type: str,
        options: DetectOptions,
        timer: StageTimer | None = None,
    ) -> Analysis:
        """`timer` measures decode and detect (detect without the wait for a free
        inference slot: that wait is queueing, not detection)."""
        timer = timer or StageTimer()
        with timer.measure("decode"):
            image: DecodedImage = await asyncio.to_thread(
                self._decoder.decode, data, content_type, options.min_face_size
            )
        async with self._inference:
            with timer.measure("detect"):
                faces = await asyncio.to_thread(self._detector.detect, image, options)
        return Analysis(faces=faces, width=image.width, height=image.height)


async def outcome_of(
    work: Callable[[], Awaitable[Analysis]], clock: Clock, label: str
) -> TaskOutcome:
    """Run one analysis and turn whatever happens into the outcome a client sees.

    A TaskFailure keeps its stable error code; anything else is logged (with `label`,
    e.g. the task id) and reported as INTERNAL_ERROR without details.
    """
    try:
        analysis = await work()
    except TaskFailure as failure:
        return TaskOutcome(
            result_code=-1,
            error_code=failure.error_code,
            error_info=failure.message,
            ended_at_ms=clock.now_ms(),
        )
    except Exception:
        log.exception("%s: unexpected error while analysing", label)
        return TaskOutcome(
            result_code=-1,
            error_code="INTERNAL_ERROR",
            error_info="internal error while analysing the image",
            ended_at_ms=clock.now_ms(),
        )
    return TaskOutcome(
        result_code=1,
        faces=tuple(analysis.faces),
        image_width=analysis.width,
        image_height=analysis.height,
        ended_at_ms=clock.now_ms(),
    )
