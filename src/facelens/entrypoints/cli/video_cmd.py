"""`facelens detect clip.mp4`: faces per sampled frame, tracked, from a local video.

The same decoder as video tasks (`adapters.video.VideoDecoder`: a resource-limited
child process, the task's sampling rule) and the same `core.tracking.Tracker`, so
what the CLI prints is what a task's complete callback would hold: `result_list`
(every face with `frame`, `timestamp_ms`, `track_id`, ordered by time then largest
first), `tracks`, `video` and `image`. `--draw out.mp4` writes the analysed frames
with boxes and track ids (`adapters.video_writer`).

A file is a video when its first bytes announce MP4/MOV/WebM/MKV, or an animated
GIF or WebP; a still GIF or WebP stays an image.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.table import Table

from facelens.adapters.detection.face_detector import FaceDetector
from facelens.adapters.video import VideoDecoder
from facelens.adapters.video.formats import sniff_container
from facelens.adapters.video_writer import AnnotatedClipWriter
from facelens.core.detection.quality import face_quality
from facelens.core.domain import DecodedImage, DetectOptions, JsonObject
from facelens.core.errors import TaskFailure
from facelens.core.tracking import Tracker, TrackObservation, face_box, summarise_tracks
from facelens.core.video import Sampling

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm")


def is_video(path: Path) -> bool:
    """Whether `path` is a video (or an animated GIF/WebP) rather than a still image."""
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    container = sniff_container(head)
    if container is None:
        return False
    if container.label not in ("gif", "webp"):
        return True
    try:
        with Image.open(path) as img:
            return bool(getattr(img, "is_animated", False))
    except (OSError, UnidentifiedImageError):
        return False


def draw_target(draw: Path) -> Path:
    """A video needs a video file to draw into: `out.jpg` becomes `out.mp4`."""
    return draw if draw.suffix.lower() in VIDEO_SUFFIXES else draw.with_suffix(".mp4")


@dataclass(slots=True)
class VideoRun:
    result: JsonObject = field(default_factory=dict)
    frames: list[tuple[int, int, int]] = field(default_factory=list)
    """(frame index, timestamp ms, faces) per analysed frame, for the text output."""


async def detect_video(
    path: Path,
    detector: FaceDetector,
    options: DetectOptions,
    sampling: Sampling,
    draw: Path | None,
) -> VideoRun:
    """Analyse one local video (raises `VideoFailure` with the task's error codes)."""
    run = VideoRun()
    tracker = Tracker(sampling.interval_ms)
    observations: list[TrackObservation] = []
    writer = AnnotatedClipWriter(draw) if draw is not None else None
    decoder = VideoDecoder()
    async with await decoder.open(str(path), sampling) as session:
        assert session.plan is not None
        info = session.plan.info
        try:
            if writer is not None:
                writer.__enter__()
            async for frame in session.frames():
                height, width = frame.pixels.shape[:2]
                image = DecodedImage(frame.pixels, width, height, "video")
                faces = detector.detect(image, options)
                ids = tracker.update(frame.timestamp_ms, faces)
                for face, track_id in zip(faces, ids, strict=True):
                    sharp = face_quality(frame.pixels, face_box(face)).blur
                    observations.append(
                        TrackObservation(track_id, frame.timestamp_ms, frame.index, face, sharp)
                    )
                run.frames.append((frame.index, frame.timestamp_ms, len(faces)))
                if writer is not None:
                    writer.add(frame.timestamp_ms, frame.pixels, faces, ids)
        finally:
            if writer is not None:
                writer.close()
    ordered = sorted(observations, key=lambda o: (o.timestamp_ms, -o.face.area, o.track_id))
    faces_out: list[JsonObject] = []
    for o in ordered:
        wire = o.face.to_json()
        wire.update(frame=o.frame, timestamp_ms=o.timestamp_ms, track_id=o.track_id)
        faces_out.append(wire)
    run.result = {
        "file": str(path),
        "video": info.to_json(len(run.frames)),
        "image": {"width": info.width, "height": info.height},
        "result_list": faces_out,
        "tracks": [summary.to_json() for summary in summarise_tracks(observations)],
    }
    return run


def print_video(run: VideoRun, out: Console, detector_name: str) -> None:
    """Per analysed frame its faces as `#track x,y wxh score`, then the tracks."""
    result = run.result
    video = result["video"]
    by_frame: dict[int, list[JsonObject]] = {}
    for face in result["result_list"]:
        by_frame.setdefault(int(face["frame"]), []).append(face)
    table = Table(
        title=f"{result['file']} ({video['width']}x{video['height']}, {video['codec']}, "
        f"{video['duration_ms']} ms, {video['frames_analysed']} frames analysed, {detector_name})"
    )
    for column in ("frame", "ms", "faces"):
        table.add_column(column, justify="right")
    table.add_column("track x,y wxh score")
    for index, timestamp_ms, count in run.frames:
        faces = " ".join(
            f"#{f['track_id']} {f['x']},{f['y']} {f['width']}x{f['height']} {f['score']:.2f}"
            for f in by_frame.get(index, [])
        )
        table.add_row(str(index), str(timestamp_ms), str(count), faces)
    out.print(table)
    tracks = Table(title=f"{len(result['tracks'])} tracks")
    for column in ("track", "first ms", "last ms", "frames", "best at ms", "best score"):
        tracks.add_column(column, justify="right")
    for t in result["tracks"]:
        best = t["best"]
        tracks.add_row(
            str(t["track_id"]),
            str(t["first_ms"]),
            str(t["last_ms"]),
            str(t["frames"]),
            str(best["timestamp_ms"]),
            f"{best['score']:.3f}",
        )
    out.print(tracks)


def video_entry(
    path: Path,
    detector: FaceDetector,
    options: DetectOptions,
    sampling: Sampling,
    draw: Path | None,
    *,
    json_out: bool,
    out: Console,
    err: Console,
) -> tuple[JsonObject, bool]:
    """`facelens detect`'s handling of one video: its JSON entry and whether it failed
    (the error printed on stderr with the task's error code)."""
    target = None if draw is None else draw_target(draw)
    try:
        run = asyncio.run(detect_video(path, detector, options, sampling, target))
    except (OSError, TaskFailure) as exc:
        code = exc.error_code if isinstance(exc, TaskFailure) else "VIDEO_DECODE_FAILED"
        err.print(f"[red]{path}:[/red] {code}: {exc}")
        return {"file": str(path), "error_code": code, "error_info": str(exc)}, True
    if target is not None:
        err.print(f"annotated clip written to {target}")
    if not json_out:
        print_video(run, out, detector.name)
    return run.result, False
