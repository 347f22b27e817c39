"""Resizing a pass's input, with large up-scalings split across two threads.

Pillow's bilinear resize is single-threaded and was 10-14 ms of a ~90 ms balanced
image (1024x768 -> 1152x864); two strips at once take about half, with pixels within
one level of the whole-image resize (numbers: docs/detection-notes.md).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
from PIL import Image

from facelens.adapters.images import resize_rgb

SPLIT_PIXELS = 500_000
"""Up-scalings to fewer output pixels than this run whole: two threads gain nothing."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _strip_pool() -> ThreadPoolExecutor:
    """The two resize threads, started on the first split resize (not at import)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(2, thread_name_prefix="facelens-resize")
        return _pool


def resized(pixels: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """`resize_rgb`, with an up-scaling to `SPLIT_PIXELS` or more split into two strips."""
    source_h, source_w = pixels.shape[:2]
    if height <= source_h or width * height < SPLIT_PIXELS:
        return resize_rgb(pixels, width, height)
    image = Image.fromarray(pixels)
    out = np.empty((height, width, 3), dtype=np.uint8)
    ratio = source_h / height
    cut = height // 2

    def strip(rows: tuple[int, int]) -> None:
        box = (0.0, rows[0] * ratio, float(source_w), rows[1] * ratio)
        part = image.resize((width, rows[1] - rows[0]), Image.Resampling.BILINEAR, box=box)
        out[rows[0] : rows[1]] = np.asarray(part)

    list(_strip_pool().map(strip, ((0, cut), (cut, height))))
    return out
