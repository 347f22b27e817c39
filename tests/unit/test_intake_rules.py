"""The business rules of a submission and the detection options, without a database:
`read_detect_options` / `to_detect_options` and `IntakeRules` are pure."""

from typing import Any

import pytest

from facelens.application.intake import IntakeRules, RawTask
from facelens.application.options import (
    AdditionalParams,
    DetectParams,
    OptionRules,
    read_detect_options,
    to_detect_options,
)
from facelens.core.domain import DetectOptions
from facelens.core.errors import InvalidParameter


def test_defaults() -> None:
    options = read_detect_options({"unknown_key": 1}, OptionRules(), "p")
    assert options.landmarks == "5"
    assert options.score_threshold is None and options.max_faces is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"score_threshold": 1.5}, "p.score_threshold"),
        ({"score_threshold": "high"}, "p.score_threshold"),
        ({"min_face_size": 0}, "p.min_face_size"),
        ({"min_face_size": 2.5}, "p.min_face_size"),
        ({"max_faces": True}, "p.max_faces"),
        ({"landmarks": "68"}, "p.landmarks"),
        ({"attributes": "pose"}, "p.attributes"),
        ({"attributes": ["pose"]}, "p.attributes"),
        ({"mode": "turbo"}, "p.mode"),
    ],
)
def test_bad_values_name_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        read_detect_options(params, OptionRules(), "p")
    assert info.value.field == field


def test_capabilities_widen_what_is_accepted() -> None:
    rules = OptionRules(
        landmark_modes=frozenset({"5", "68", "none"}),
        attributes=frozenset({"pose"}),
        modes=frozenset({"fast"}),
    )
    options = read_detect_options(
        {"landmarks": 68, "attributes": ["pose", "pose"], "mode": "fast"}, rules, "p"
    )
    assert options.landmarks == "68"
    assert options.attributes == ("pose",)
    assert options.mode == "fast"


def test_the_submit_model_and_the_detect_model_read_options_alike() -> None:
    """One declaration: a task's additional_params carry exactly the detect options."""
    given = {"score_threshold": 0.5, "min_face_size": 20, "max_faces": 3, "landmarks": "none"}
    task = AdditionalParams.model_validate({"target_image_url": "http://a/b.jpg", **given})
    alone = DetectParams.model_validate(given)
    assert to_detect_options(task, OptionRules(), "t") == to_detect_options(alone, OptionRules())
    assert set(AdditionalParams.model_fields) - set(DetectParams.model_fields) == {
        "target_image_url",
        "target_video_url",  # and the video sampling (issue 10): queued tasks only
        "frame_interval_ms",
        "max_frames",
        "start_ms",
        "end_ms",
    }


def test_stored_options_round_trip() -> None:
    options = DetectOptions(0.4, 12, 2, "68", ("pose", "quality"), "fast")
    stored = options.to_json()
    assert stored["attributes"] == ["pose", "quality"]
    assert DetectOptions.from_json(stored) == options
    assert DetectOptions.from_json({}) == DetectOptions()
    assert DetectOptions.from_json({"landmarks": None, "gone": 1}) == DetectOptions()


def raw(callback_params: Any = None, **params: Any) -> RawTask:
    return RawTask(
        AdditionalParams.model_validate({"target_image_url": "http://a/b.jpg", **params}),
        callback_params,
    )


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def test_a_task_is_checked_and_converted() -> None:
    task = IntakeRules().task(0, raw({"user": 1}, max_faces=2))
    assert task.image_url == "http://a/b.jpg"
    assert task.callback_params == {"user": 1}
    assert task.options == DetectOptions(max_faces=2)
    assert IntakeRules().task(0, raw()).callback_params == {}


@pytest.mark.parametrize(
    ("rules", "task", "problem"),
    [
        (IntakeRules(), raw(nested(33)), "nested deeper than 32"),
        (IntakeRules(max_callback_params_bytes=20), raw({"pad": "x" * 20}), "larger than 20"),
        (IntakeRules(max_callback_params_depth=2), raw(nested(3)), "nested deeper than 2"),
    ],
)
def test_callback_params_size_and_depth_are_one_rule(
    rules: IntakeRules, task: RawTask, problem: str
) -> None:
    with pytest.raises(InvalidParameter) as info:
        rules.task(3, task)
    assert info.value.field == "task_list[3].callback_params"
    assert problem in info.value.problem


def test_callback_params_at_the_limits_pass() -> None:
    assert IntakeRules().task(0, raw(nested(32))).callback_params == nested(32)
    assert IntakeRules(max_callback_params_bytes=12).task(0, raw({"pad": "x"}))


def test_options_errors_name_the_task() -> None:
    with pytest.raises(InvalidParameter) as info:
        IntakeRules().task(1, raw(mode="turbo"))
    assert info.value.field == "task_list[1].additional_params.mode"


def test_url_check_names_the_field() -> None:
    def refuse(url: str) -> str:
        raise ValueError("no")

    with pytest.raises(InvalidParameter) as info:
        IntakeRules(url_check=refuse).task(2, raw())
    assert info.value.field == "task_list[2].additional_params.target_image_url"
