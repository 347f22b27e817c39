"""What a submission may contain: the rules every task passes before it is queued.

Pure (no store, no clock): the settings and the detector's capabilities in, a
validated `NewTask` or an InvalidParameter naming the field out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from facelens.application.options import AdditionalParams, OptionRules, to_detect_options
from facelens.core.callbacks import dump_json
from facelens.core.domain import JsonObject, NewTask
from facelens.core.errors import InvalidParameter
from facelens.core.video import Sampling

UrlCheck = Callable[[str], str]
"""Validates a URL's form (scheme, host, length); raises ValueError naming the problem."""

MAX_CALLBACK_PARAMS_DEPTH = 32
"""Deepest nesting of arrays/objects in `callback_params`. The body size limit alone
lets ~8,000 levels through, which later recursive code (serialisers, receivers'
parsers) may not survive; no real request context is this deep."""


@dataclass(frozen=True, slots=True)
class RawTask:
    """One `task_list` entry after wire parsing, before the business rules."""

    params: AdditionalParams
    callback_params: JsonObject | None


@dataclass(frozen=True, slots=True)
class IntakeRules:
    """What a submission may contain (settings and detector capabilities)."""

    max_tasks: int = 100
    max_video_frames: int = 3600
    options: OptionRules = field(default_factory=OptionRules)
    max_callback_params_bytes: int = 16_384
    max_callback_params_depth: int = MAX_CALLBACK_PARAMS_DEPTH
    url_check: UrlCheck | None = None

    def task(self, index: int, raw: RawTask) -> NewTask:
        """Task `index` of a submission, checked: its URL, its callback_params, its options."""
        prefix = f"task_list[{index}].additional_params"
        params = raw.params
        video = self.video(prefix, params)
        url = params.target_video_url if video is not None else params.target_image_url
        assert url is not None  # self.video() made sure one of them is there
        self.check_url(f"{prefix}.target_{'video' if video else 'image'}_url", url)
        return NewTask(
            image_url=url,
            callback_params=self.callback_params(
                f"task_list[{index}].callback_params", raw.callback_params
            ),
            options=to_detect_options(params, self.options, prefix),
            video=video,
        )

    def video(self, prefix: str, params: AdditionalParams) -> Sampling | None:
        """A video task's sampling, None for an image task; exactly one URL is given."""
        if params.target_image_url is not None and params.target_video_url is not None:
            raise InvalidParameter(
                f"{prefix}.target_video_url", "give target_image_url or target_video_url, not both"
            )
        if params.target_video_url is None:
            if params.target_image_url is None:
                raise InvalidParameter(
                    f"{prefix}.target_image_url", "required (or target_video_url for a video)"
                )
            return None
        if params.max_frames > self.max_video_frames:
            raise InvalidParameter(f"{prefix}.max_frames", f"at most {self.max_video_frames}")
        if params.end_ms is not None and params.end_ms <= params.start_ms:
            raise InvalidParameter(f"{prefix}.end_ms", "must be after start_ms")
        return Sampling(
            interval_ms=params.frame_interval_ms,
            max_frames=params.max_frames,
            start_ms=params.start_ms,
            end_ms=params.end_ms,
        )

    def callback_params(self, field: str, params: JsonObject | None) -> JsonObject:
        """The echoed request context within its nesting and size limits (`{}` if none).
        Depth first: it is measured without recursion, the size by serialising."""
        params = params if params is not None else {}
        if _depth(params, self.max_callback_params_depth) > self.max_callback_params_depth:
            raise InvalidParameter(
                field, f"nested deeper than {self.max_callback_params_depth} levels"
            )
        if len(dump_json(params).encode()) > self.max_callback_params_bytes:
            raise InvalidParameter(field, f"larger than {self.max_callback_params_bytes} bytes")
        return params

    def check_url(self, name: str, url: str) -> None:
        """Raises InvalidParameter naming `name` when the URL's form is refused."""
        if self.url_check is None:
            return
        try:
            self.url_check(url)
        except ValueError as exc:
            raise InvalidParameter(name, str(exc)) from None


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value (scalars are 0), without recursion; stops counting
    once past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest
