"""Synchronous detection (`POST /api/face/detect`): one credit, the answer at once.

The credit is charged before the work and refunded if the image cannot be analysed,
the same rule as for queued tasks. A video is a bad request (100010 pointing to the
task API), not a failed analysis, so it must leave no trace in the ledger: an
uploaded file is sniffed before the charge, and an `image_url` is downloaded first,
then sniffed, then charged (an empty balance is refused before the download).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from facelens.application.pipeline import Analysis, ImagePipeline, outcome_of
from facelens.application.ports import Clock, Store
from facelens.application.telemetry import NO_TELEMETRY, Telemetry
from facelens.core.domain import Account, DetectOptions, TaskOutcome
from facelens.core.errors import InsufficientCredits, InvalidParameter
from facelens.core.video import looks_like_video

log = logging.getLogger("facelens.instant")

VIDEO_HINT = (
    "this endpoint analyses images only; submit a video to the task API: POST "
    "/api/aigc/task/submit with additional_params.target_video_url"
)

_Work = Callable[[], Awaitable[Analysis]]


@dataclass(slots=True)
class InstantDetection:
    store: Store
    clock: Clock
    pipeline: ImagePipeline
    refund_failed: bool = True
    telemetry: Telemetry = NO_TELEMETRY

    async def from_url(self, account: Account, url: str, options: DetectOptions) -> TaskOutcome:
        if account.credits < 1:  # the same answer the charge gives, without a download
            raise InsufficientCredits(1, account.credits)
        try:
            fetched = await self.pipeline.fetch(url)
        except Exception as exc:  # a failed download is charged and refunded as before
            failed = exc

            async def failing() -> Analysis:
                raise failed

            return await self._charged(account, failing)
        if looks_like_video(fetched.data[:64]):
            raise InvalidParameter("image_url", VIDEO_HINT)
        return await self._charged(
            account,
            lambda: self.pipeline.from_bytes(fetched.data, fetched.content_type, options),
        )

    async def from_bytes(
        self, account: Account, data: bytes, content_type: str, options: DetectOptions
    ) -> TaskOutcome:
        if looks_like_video(data[:64]):
            raise InvalidParameter("file", VIDEO_HINT)
        return await self._charged(
            account, lambda: self.pipeline.from_bytes(data, content_type, options)
        )

    async def _charged(self, account: Account, work: _Work) -> TaskOutcome:
        await self.store.charge(account.id, 1, "detect", self.clock.now_ms())
        self.telemetry.credits("charged", 1)
        started = time.perf_counter()
        outcome = await outcome_of(work, self.clock, f"account {account.id} detect")
        if not outcome.succeeded and self.refund_failed:
            await self.store.add_credits(account.id, 1, "refund", self.clock.now_ms())
            self.telemetry.credits("refunded", 1)
        log.debug(
            "account %d: detect took %.1f ms", account.id, (time.perf_counter() - started) * 1e3
        )
        return outcome
