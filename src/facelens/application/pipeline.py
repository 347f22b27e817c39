"""Fetch, decode, detect: one image's way through the service.

Decoding and inference are CPU-bound and release the GIL (Pillow, ONNX Runtime), so
they run in worker threads; a semaphore caps how many inferences run at once because
each one already uses every core it was given.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from facelens.application.ports import Detector, ImageDecoder, ImageFetcher
from facelens.core.domain import DecodedImage, DetectOptions, Face


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

    @property
    def detector_name(self) -> str:
        return self._detector.name

    async def from_url(self, url: str, options: DetectOptions) -> Analysis:
        fetched = await self._fetcher.fetch(url)
        return await self.from_bytes(fetched.data, fetched.content_type, options)

    async def from_bytes(self, data: bytes, content_type: str, options: DetectOptions) -> Analysis:
        image: DecodedImage = await asyncio.to_thread(
            self._decoder.decode, data, content_type, options.min_face_size
        )
        async with self._inference:
            faces = await asyncio.to_thread(self._detector.detect, image, options)
        return Analysis(faces=faces, width=image.width, height=image.height)
