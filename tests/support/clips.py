"""Real test videos made from dev photos, with every frame's true face boxes.

A window with the clip's aspect ratio pans and zooms across a WIDER FACE photo; each
frame is that window resized to the clip size, so the photo's ground-truth boxes map
to each frame by one shift and one scale. Encoded with PyAV: H.264 (libx264, yuv420p)
in MP4/MKV, VP9 in WebM; animated GIF and WebP frame sequences are written by Pillow
(an adaptive palette for GIF; PyAV's FFmpeg cannot read animated WebP back, and its
GIF encoder only has a fixed 3-3-2 palette that smears faces). Kept small (a few
seconds, 640x360 by default) so tests stay quick; the speed bench asks for 1080p.

`make_clip(photo, boxes, path, ...) -> Clip` writes the file and returns the path,
the timestamps and, per frame, the true boxes (frame pixels, x y w h) with the index
of each face in the photo's ground truth (its identity across frames).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
import numpy.typing as npt
from PIL import Image

from facelens.core.domain import Face
from facelens.core.tracking import Tracker
from facelens.core.tracking_eval import FrameTracks, FrameTruth, TrackingScore, score_tracking

FloatArray = npt.NDArray[np.float64]
Container = Literal["mp4", "mkv", "webm", "gif", "webp"]

CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    "mp4": ("libx264", "yuv420p", {"crf": "20", "preset": "veryfast"}),
    "mkv": ("libx264", "yuv420p", {"crf": "20", "preset": "veryfast"}),
    "webm": ("libvpx-vp9", "yuv420p", {"crf": "32", "b": "0", "deadline": "realtime"}),
}
"""Container -> (encoder, pixel format, encoder options) of the PyAV-encoded ones."""


@dataclass(frozen=True, slots=True)
class View:
    """The photo window at one moment: centre and width in photo pixels."""

    cx: float
    cy: float
    width: float


@dataclass(frozen=True, slots=True)
class ClipFrame:
    index: int
    timestamp_ms: int
    boxes: FloatArray
    """(N, 4) x, y, w, h in frame pixels of every true face whose box meets the frame."""
    face_ids: npt.NDArray[np.int64]
    """Index of each box's face in the photo's ground truth (the same face every frame)."""
    width: int
    height: int

    def in_view(self, min_side: float = 0.0) -> npt.NDArray[np.bool_]:
        """Faces fully inside the frame whose longer side is >= `min_side` pixels (the
        size measure of `min_face_size`)."""
        x, y, w, h = self.boxes.reshape(-1, 4).T
        inside = (x >= 0) & (y >= 0) & (x + w <= self.width) & (y + h <= self.height)
        out: npt.NDArray[np.bool_] = inside & (np.maximum(w, h) >= min_side)
        return out


@dataclass(frozen=True, slots=True)
class Clip:
    path: Path
    width: int
    height: int
    fps: Fraction
    frames: list[ClipFrame]

    @property
    def duration_ms(self) -> int:
        return round(len(self.frames) * 1000 / self.fps)


def pan_zoom_path(
    photo_size: tuple[int, int],
    aspect: float,
    count: int,
    *,
    zoom: tuple[float, float] = (1.0, 0.6),
    shake: float = 0.0,
    seed: int = 0,
) -> list[View]:
    """A window panning left to right across the photo while zooming from `zoom[0]`
    to `zoom[1]` of the largest window that fits, eased in and out.

    Every edge of the window moves one way only (left and right edges rightwards,
    top down, bottom up), so a face that leaves the view never comes back: a new
    track id for it would be right, and the ID measure would count it as a switch.
    `shake` > 0 adds a hand-held camera: a smoothed random jitter of up to about
    that fraction of the window width, in x and y (then edges do move both ways).
    """
    pw, ph = photo_size
    largest = min(pw, ph * aspect)
    w0, w1 = largest * zoom[0], largest * zoom[1]
    views: list[View] = []
    for i in range(count):
        t = i / max(1, count - 1)
        ease = 0.5 - 0.5 * np.cos(np.pi * t)
        left = (pw - w1) * ease
        right = w0 + (pw - w0) * ease
        views.append(View(float((left + right) / 2), ph / 2, float(right - left)))
    if shake > 0:
        rng = np.random.default_rng(seed)
        kernel = np.hanning(9) / np.hanning(9).sum()
        walk = [np.convolve(rng.normal(0, 1, count + 8), kernel, "valid") for _ in range(2)]
        jitter = np.column_stack(walk)[:count] / 0.45  # the smoothing's std is ~0.45
        out = []
        for view, (jx, jy) in zip(views, jitter, strict=True):
            half_w, half_h = view.width / 2, view.width / aspect / 2
            cx = np.clip(view.cx + jx * shake * view.width, half_w, pw - half_w)
            cy = np.clip(view.cy + jy * shake * view.width, half_h, ph - half_h)
            out.append(View(float(cx), float(cy), view.width))
        views = out
    return views


def frame_of(
    photo: Image.Image, view: View, size: tuple[int, int]
) -> tuple[npt.NDArray[np.uint8], float, float, float]:
    """The window's pixels at `size`, plus (x0, y0, scale) mapping photo -> frame."""
    out_w, out_h = size
    scale = out_w / view.width
    height = out_h / scale
    x0, y0 = view.cx - view.width / 2, view.cy - height / 2
    box = (x0, y0, x0 + view.width, y0 + height)
    pixels = np.asarray(photo.resize(size, Image.Resampling.BILINEAR, box=box), dtype=np.uint8)
    return pixels, x0, y0, scale


def truth_in_frame(
    boxes: FloatArray, x0: float, y0: float, scale: float, size: tuple[int, int]
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """The photo's true boxes (x y w h) in frame pixels, those that meet the frame."""
    moved = np.column_stack(
        [(boxes[:, 0] - x0) * scale, (boxes[:, 1] - y0) * scale, boxes[:, 2:] * scale]
    ).reshape(-1, 4)
    w, h = size
    meets = (
        (moved[:, 0] < w)
        & (moved[:, 1] < h)
        & (moved[:, 0] + moved[:, 2] > 0)
        & (moved[:, 1] + moved[:, 3] > 0)
        & (boxes[:, 2] > 0)
        & (boxes[:, 3] > 0)
    )
    return moved[meets], np.flatnonzero(meets).astype(np.int64)


def encode(
    frames: Sequence[npt.NDArray[np.uint8]], path: Path, fps: Fraction, container: Container
) -> None:
    """Write RGB frames to `path`, one frame per 1/fps (GIF: whole centiseconds)."""
    if container in ("gif", "webp"):
        images = [Image.fromarray(p) for p in frames]
        duration = round(1000 / fps) if container == "webp" else round(100 / fps) * 10
        extra = {"quality": 80} if container == "webp" else {"optimize": False}
        images[0].save(
            path, save_all=True, append_images=images[1:], duration=duration, loop=0, **extra
        )
        return
    codec, pix_fmt, options = CODECS[container]
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=fps, options=options)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.time_base = Fraction(1) / fps
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format=pix_fmt)
            frame.pts = index
            frame.time_base = Fraction(1) / fps
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def make_clip(
    photo_path: Path,
    boxes: FloatArray,
    path: Path,
    *,
    size: tuple[int, int] = (640, 360),
    fps: Fraction | int = 25,
    seconds: float = 3.0,
    container: Container = "mp4",
    views: Sequence[View] | None = None,
    shake: float = 0.0,
) -> Clip:
    """Render and encode a pan-and-zoom clip over `photo_path` (true `boxes`: x y w h)."""
    rate = Fraction(fps)
    count = max(1, round(seconds * rate))
    with Image.open(photo_path) as img:
        photo = img.convert("RGB")
    aspect = size[0] / size[1]
    path_views = (
        list(views) if views is not None else pan_zoom_path(photo.size, aspect, count, shake=shake)
    )
    pixels: list[npt.NDArray[np.uint8]] = []
    truth: list[ClipFrame] = []
    for index, view in enumerate(path_views):
        frame, x0, y0, scale = frame_of(photo, view, size)
        moved, ids = truth_in_frame(np.asarray(boxes, float).reshape(-1, 4), x0, y0, scale, size)
        pixels.append(frame)
        truth.append(ClipFrame(index, round(index * 1000 / rate), moved, ids, size[0], size[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    encode(pixels, path, rate, container)
    return Clip(path, size[0], size[1], rate, truth)


def decode_rgb(path: Path) -> list[tuple[int, npt.NDArray[np.uint8]]]:
    """Every frame of `path` as (timestamp ms, RGB pixels): a reference decoder for
    tests of the clips themselves, not the service's decoder."""
    out: list[tuple[int, npt.NDArray[np.uint8]]] = []
    if path.suffix == ".webp":
        with Image.open(path) as img:
            ts = 0
            for index in range(getattr(img, "n_frames", 1)):
                img.seek(index)
                out.append((ts, np.asarray(img.convert("RGB"), dtype=np.uint8)))
                ts += int(img.info.get("duration", 0))
        return out
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            base = stream.time_base or Fraction(1, 1000)
            ts = 0 if frame.pts is None else round(float(frame.pts * base) * 1000)
            out.append((ts, np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)))
    return out


def sample(timestamps: Sequence[int], interval_ms: int, start_ms: int = 0) -> list[int]:
    """Indices of the frames a task analyses: for each grid point start, start +
    interval, ..., the first frame whose timestamp is >= it (0 = every frame)."""
    if interval_ms <= 0:
        return [i for i, ts in enumerate(timestamps) if ts >= start_ms]
    picked: list[int] = []
    grid = start_ms
    for i, ts in enumerate(timestamps):
        if ts >= grid:
            picked.append(i)
            grid += interval_ms * (1 + (ts - grid) // interval_ms)
    return picked


def track_clip(
    clip: Clip,
    detect: Callable[[npt.NDArray[np.uint8]], Sequence[Face]],
    interval_ms: int,
    *,
    min_side: float = 40.0,
) -> TrackingScore:
    """Decode `clip`, detect and track the sampled frames, score against the truth."""
    decoded = decode_rgb(clip.path)
    tracker = Tracker(interval_ms)
    truth: list[FrameTruth] = []
    results: list[FrameTracks] = []
    for index in sample([ts for ts, _ in decoded], interval_ms):
        ts, pixels = decoded[index]
        faces = detect(pixels)
        ids = tracker.update(ts, faces)
        frame = clip.frames[index]
        truth.append(FrameTruth(frame.boxes, frame.face_ids, frame.in_view(min_side)))
        boxes = np.array([[f.x, f.y, f.width, f.height] for f in faces], float).reshape(-1, 4)
        results.append(FrameTracks(boxes, ids))
    return score_tracking(truth, results)


def clip_photos(
    truth: Sequence[tuple[str, FloatArray]],
    *,
    min_side: float = 64.0,
    faces: tuple[int, int] = (2, 10),
) -> list[str]:
    """Keys of photos worth a clip: between `faces` faces whose longer side is at least
    `min_side` photo pixels (>= 40 px in a 640-wide frame of the whole photo), sorted."""
    keep = []
    for key, boxes in truth:
        sides = np.asarray(boxes, float).reshape(-1, 4)[:, 2:].max(axis=1, initial=0.0)
        if faces[0] <= int(np.count_nonzero(sides >= min_side)) <= faces[1]:
            keep.append(key)
    return sorted(keep)
