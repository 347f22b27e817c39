"""A video task's result: segment records in, the complete callback's fields out. Pure.

A segment (or a whole short video) is analysed on its own with its own `Tracker`, so
its faces carry segment-local track ids; what a segment keeps is `segment_record`
(JSON, stored with the segment row). When the last segment is done,
`video_success` stitches the segments' tracks (`core.tracking.stitch`) into task-wide
ids and renders the result: every face of every analysed frame, ordered by time then
largest first, each with `frame`, `timestamp_ms` and `track_id`; `tracks` (one
summary per track, with its best face); `video` and `image`.

The faces are stored in their wire form (`Face.to_json`) and read back with
`face_from_json`, which gives the same wire form again, so a stored segment renders
exactly as if it had been analysed in the finishing process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from facelens.core.callbacks import complete_fields, dump_json, outcome_fields
from facelens.core.domain import ClaimedTask, Face, JsonObject, TaskOutcome
from facelens.core.tracking import TrackObservation, stitch, summarise_tracks
from facelens.core.video import VideoInfo

_BOX_KEYS = ("x", "y", "width", "height", "score", "landmarks")


@dataclass(frozen=True, slots=True)
class AnalysedFrame:
    """One analysed frame: its faces and their segment-local track ids (same order)."""

    frame: int
    timestamp_ms: int
    faces: tuple[Face, ...]
    track_ids: tuple[int, ...]
    sharpness: tuple[float | None, ...] = ()


@dataclass(frozen=True, slots=True)
class VideoResult:
    """What finishing a video task writes: the stored result and the callback text."""

    succeeded: bool
    result: JsonObject
    complete_body: str
    frames_analysed: int
    error_code: str = ""
    error_info: str = ""


def face_from_json(data: JsonObject) -> Face:
    landmarks = {
        str(name): (float(point[0]), float(point[1]))
        for name, point in (data.get("landmarks") or {}).items()
    }
    extras = {key: value for key, value in data.items() if key not in _BOX_KEYS}
    return Face(
        x=float(data["x"]),
        y=float(data["y"]),
        width=float(data["width"]),
        height=float(data["height"]),
        score=float(data["score"]),
        landmarks=landmarks,
        extras=extras,
    )


def segment_record(frames: Sequence[AnalysedFrame], width: int, height: int) -> JsonObject:
    """A segment's analysed frames as stored JSON (faces in wire form, local ids)."""
    out: list[JsonObject] = []
    for item in frames:
        sharp = list(item.sharpness) or [None] * len(item.faces)
        out.append(
            {
                "frame": item.frame,
                "timestamp_ms": item.timestamp_ms,
                "faces": [
                    {"face": face.to_json(), "track": track, "sharpness": s}
                    for face, track, s in zip(item.faces, item.track_ids, sharp, strict=True)
                ],
            }
        )
    return {"frames": out, "width": width, "height": height}


def _observations(record: JsonObject) -> list[TrackObservation]:
    return [
        TrackObservation(
            track_id=int(entry["track"]),
            timestamp_ms=int(frame["timestamp_ms"]),
            frame=int(frame["frame"]),
            face=face_from_json(entry["face"]),
            sharpness=None if entry.get("sharpness") is None else float(entry["sharpness"]),
        )
        for frame in record["frames"]
        for entry in frame["faces"]
    ]


def video_success(
    task: ClaimedTask,
    info: VideoInfo,
    records: Sequence[JsonObject],
    interval_ms: int,
    ended_at_ms: int,
) -> VideoResult:
    """The result of a video whose segments (in time order) were all analysed."""
    segments = [_observations(record) for record in records]
    maps = stitch(segments, interval_ms)
    observations = [
        TrackObservation(maps[i][o.track_id], o.timestamp_ms, o.frame, o.face, o.sharpness)
        for i, segment in enumerate(segments)
        for o in segment
    ]
    observations.sort(key=lambda o: (o.timestamp_ms, -o.face.area, o.track_id))
    faces: list[JsonObject] = []
    for o in observations:
        wire = o.face.to_json()
        wire.update(frame=o.frame, timestamp_ms=o.timestamp_ms, track_id=o.track_id)
        faces.append(wire)
    analysed = sum(len(record["frames"]) for record in records)
    width = int(records[0]["width"]) if records else info.width
    height = int(records[0]["height"]) if records else info.height
    outcome = TaskOutcome(
        result_code=1, image_width=width, image_height=height, ended_at_ms=ended_at_ms
    )
    extra: JsonObject = {
        "result_list": faces,
        "video": info.to_json(analysed),
        "tracks": [summary.to_json() for summary in summarise_tracks(observations)],
    }
    return _render(task, outcome, extra, analysed)


def video_failure(
    task: ClaimedTask,
    error_code: str,
    error_info: str,
    info: VideoInfo | None,
    ended_at_ms: int,
) -> VideoResult:
    """A failed video: the image failure fields plus `video` (when it was probed) and
    no tracks; nothing was analysed, so nothing is charged."""
    outcome = TaskOutcome(
        result_code=-1, error_code=error_code, error_info=error_info, ended_at_ms=ended_at_ms
    )
    extra: JsonObject = {"video": None if info is None else info.to_json(0), "tracks": []}
    return _render(task, outcome, extra, 0)


def video_result_of(
    task: ClaimedTask,
    info: VideoInfo | None,
    records: Sequence[JsonObject],
    failure: tuple[str, str] | None,
    interval_ms: int,
    now_ms: int,
) -> VideoResult:
    """What the last segment's transaction records: a failure (any segment's, or a
    video never probed) or the stitched success."""
    if failure is not None or info is None:
        code, text = failure or ("INTERNAL_ERROR", "the video was never probed")
        return video_failure(task, code, text, info, now_ms)
    return video_success(task, info, records, interval_ms, now_ms)


def _render(
    task: ClaimedTask, outcome: TaskOutcome, extra: JsonObject, analysed: int
) -> VideoResult:
    result = outcome_fields(outcome)
    result.update(extra)
    body = complete_fields(task, outcome)
    body.update(extra)
    return VideoResult(
        succeeded=outcome.succeeded,
        result=result,
        complete_body=dump_json(body),
        frames_analysed=analysed,
        error_code=outcome.error_code,
        error_info=outcome.error_info,
    )
