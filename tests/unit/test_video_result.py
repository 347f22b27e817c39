"""The video complete callback from segment records (core/video_result.py)."""

from __future__ import annotations

import json

from facelens.core.domain import ClaimedTask, DetectOptions, Face
from facelens.core.video import VideoInfo
from facelens.core.video_result import (
    AnalysedFrame,
    face_from_json,
    segment_record,
    video_failure,
    video_success,
)

TASK = ClaimedTask(
    id=7,
    creation_id="c" * 32,
    account_id=1,
    image_url="http://v.example/a.mp4",
    callback_url="http://cb.example/",
    callback_params={"user": 1},
    options=DetectOptions(),
    attempts=1,
    started_at_ms=1_000,
)
INFO = VideoInfo("mp4", "h264", 640, 360, 4_000, 25.0, 100)


def face(x: float, size: float, score: float = 0.9) -> Face:
    return Face(x, 50, size, size, score, {"nose": (x + size / 2, 80.0)}, {"pose": {"yaw": 1.0}})


def test_faces_round_trip_through_the_wire_form() -> None:
    original = face(10.4, 60.6)
    assert face_from_json(original.to_json()).to_json() == original.to_json()


def test_two_segments_one_person_one_track_and_the_contract_fields() -> None:
    first = segment_record(
        [
            AnalysedFrame(0, 0, (face(100, 80), face(400, 40)), (1, 2)),
            AnalysedFrame(25, 1000, (face(110, 80),), (1,)),
        ],
        640,
        360,
    )
    second = segment_record(  # the same person just after the border, new local id
        [AnalysedFrame(50, 2000, (face(120, 80),), (1,))], 640, 360
    )
    result = video_success(TASK, INFO, [first, second], 1000, ended_at_ms=9_000)
    body = json.loads(result.complete_body)
    assert result.succeeded and result.frames_analysed == 3
    faces = body["result_list"]
    assert [(f["frame"], f["timestamp_ms"], f["width"]) for f in faces] == [
        (0, 0, 80),
        (0, 0, 40),
        (25, 1000, 80),
        (50, 2000, 80),
    ]
    person = {f["track_id"] for f in faces if f["width"] == 80}
    assert len(person) == 1 and faces[1]["track_id"] not in person
    assert body["video"] == {
        "width": 640,
        "height": 360,
        "duration_ms": 4000,
        "fps": 25.0,
        "codec": "h264",
        "frames_analysed": 3,
    }
    assert body["image"] == {"width": 640, "height": 360}
    tracks = {t["track_id"]: t for t in body["tracks"]}
    assert tracks[person.pop()]["frames"] == 3
    assert set(tracks[faces[0]["track_id"]]) == {
        "track_id",
        "first_ms",
        "last_ms",
        "frames",
        "best",
    }
    assert "timestamp_ms" in tracks[faces[0]["track_id"]]["best"]
    assert body["result_code"] == 1 and body["process_status"] == 2
    assert body["request_context"] == {"user": 1} and body["task_id"] == "7"
    assert result.result["result_list"] == faces  # what the query API shows


def test_failure_has_no_faces_and_costs_nothing() -> None:
    result = video_failure(TASK, "VIDEO_TOO_LONG", "too long", None, 5_000)
    body = json.loads(result.complete_body)
    assert not result.succeeded and result.frames_analysed == 0
    assert (body["result_code"], body["error_code"], body["result_list"]) == (
        -1,
        "VIDEO_TOO_LONG",
        [],
    )
    assert body["video"] is None and body["tracks"] == []
