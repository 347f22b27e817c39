import json

from facelens.core.callbacks import complete_body, start_body, webhook_id
from facelens.core.domain import ClaimedTask, DetectOptions, Face, ProcessStatus, TaskOutcome

TASK = ClaimedTask(
    id=42,
    creation_id="ab" * 16,
    account_id=1,
    image_url="https://img.example/a.jpg",
    callback_url="https://cb.example/hook",
    callback_params={"user_id": 1, "timestamp": "00:00:01"},
    options=DetectOptions(),
    attempts=1,
    started_at_ms=1_700_000_000_000,
)


def test_start_body_has_exactly_the_hosted_fields() -> None:
    body = json.loads(start_body(TASK))
    assert body == {
        "task_id": "42",
        "creation_id": "ab" * 16,
        "start_time": 1_700_000_000_000,
        "process_status": 1,
        "request_context": {"user_id": 1, "timestamp": "00:00:01"},
    }


def test_complete_body_success() -> None:
    face = Face(10.4, 20.6, 30.0, 40.0, 0.98765, {"left_eye": (1.0, 2.0), "right_eye": (3.0, 2.0)})
    outcome = TaskOutcome(
        result_code=1,
        faces=(face,),
        image_width=640,
        image_height=480,
        ended_at_ms=1_700_000_001_500,
    )
    body = json.loads(complete_body(TASK, outcome))
    assert body["process_status"] == 2
    assert body["end_time"] == 1_700_000_001_500
    assert body["cost_time"] == 1.5
    assert body["result_code"] == 1
    assert body["error_code"] == "" and body["error_info"] == ""
    assert body["image"] == {"width": 640, "height": 480}
    assert body["result_list"] == [
        {
            "x": 10,
            "y": 21,
            "width": 30,
            "height": 40,
            "score": 0.9877,
            "landmarks": {"left_eye": [1.0, 2.0], "right_eye": [3.0, 2.0]},
        }
    ]
    assert body["request_context"] == TASK.callback_params


def test_complete_body_failure() -> None:
    outcome = TaskOutcome(
        result_code=-1,
        error_code="IMAGE_DOWNLOAD_FAILED",
        error_info="HTTP 404",
        ended_at_ms=TASK.started_at_ms + 10,
    )
    body = json.loads(complete_body(TASK, outcome))
    assert body["result_code"] == -1
    assert body["error_code"] == "IMAGE_DOWNLOAD_FAILED"
    assert body["result_list"] == []
    assert body["image"] is None


def test_bodies_are_deterministic_and_ids_stable() -> None:
    assert start_body(TASK) == start_body(TASK)
    assert webhook_id(42, ProcessStatus.STARTED) == "msg_42_1"
    assert webhook_id(42, ProcessStatus.COMPLETED) == "msg_42_2"
