"""The business rules of a submission, without a database (parse_options is pure)."""

from typing import Any

import pytest

from facelens.application.service import IntakeRules, TaskService
from facelens.core.errors import InvalidParameter


def service(**rules: Any) -> TaskService:
    return TaskService(store=None, clock=None, rules=IntakeRules(**rules))  # type: ignore[arg-type]


def test_defaults() -> None:
    options = service().parse_options("p", {"unknown_key": 1})
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
        service().parse_options("p", params)
    assert info.value.field == field


def test_capabilities_widen_what_is_accepted() -> None:
    svc = service(
        landmark_modes=frozenset({"5", "68", "none"}),
        attributes=frozenset({"pose"}),
        modes=frozenset({"fast"}),
    )
    options = svc.parse_options(
        "p", {"landmarks": 68, "attributes": ["pose", "pose"], "mode": "fast"}
    )
    assert options.landmarks == "68"
    assert options.attributes == ("pose",)
    assert options.mode == "fast"
