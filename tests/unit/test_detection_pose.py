"""Head pose from five landmarks: synthetic faces with a known rotation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facelens.core.detection.pose import MEAN_FACE_MM, HeadPose, head_pose


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-frame rotation (x right, y up, z to the viewer), the pose module's convention."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    # pitch > 0 moves the nose (+z) up (+y)
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    out: np.ndarray = rz @ ry @ rx
    return out


def project(yaw: float, pitch: float, roll: float, scale: float = 2.0) -> np.ndarray:
    """The mean face rotated, projected orthographically into image pixels (y down)."""
    points = MEAN_FACE_MM @ rotation(yaw, pitch, roll).T * scale
    image = np.stack([300 + points[:, 0], 200 - points[:, 1]], axis=1)
    return image


def test_a_frontal_face_has_no_rotation() -> None:
    pose = head_pose(project(0, 0, 0))
    assert abs(pose.yaw) < 0.5 and abs(pose.pitch) < 0.5 and abs(pose.roll) < 0.5


@pytest.mark.parametrize("yaw", [-50.0, -20.0, 10.0, 35.0])
def test_yaw_is_recovered_with_its_sign(yaw: float) -> None:
    pose = head_pose(project(yaw, 0, 0))
    assert pose.yaw == pytest.approx(yaw, abs=2.0)
    assert abs(pose.roll) < 1.0


@pytest.mark.parametrize("roll", [-30.0, 15.0, 45.0])
def test_roll_comes_from_the_eye_line(roll: float) -> None:
    pose = head_pose(project(0, 0, roll))
    assert pose.roll == pytest.approx(roll, abs=0.5)
    assert abs(pose.yaw) < 2.0


def test_pitch_sign_up_is_positive() -> None:
    assert head_pose(project(0, 20, 0)).pitch == pytest.approx(20, abs=3)
    assert head_pose(project(0, -20, 0)).pitch == pytest.approx(-20, abs=3)


def test_a_mirrored_face_negates_yaw_and_roll() -> None:
    marks = project(25, 5, 10)
    mirrored = marks[[1, 0, 2, 4, 3]].copy()  # the eyes and mouth corners swap names
    mirrored[:, 0] = 1000 - mirrored[:, 0]
    a, b = head_pose(marks), head_pose(mirrored)
    assert b.yaw == pytest.approx(-a.yaw, abs=1e-6)
    assert b.roll == pytest.approx(-a.roll, abs=1e-6)
    assert b.pitch == pytest.approx(a.pitch, abs=1e-6)


def test_to_json_rounds_degrees() -> None:
    assert set(head_pose(project(10, 0, 0)).to_json()) == {"yaw", "pitch", "roll"}


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0, 0, 0), (30, -10, 15), (-45, 20, -25)])
def test_the_pose_rotation_and_drawn_axes_follow_the_measured_convention(
    yaw: float, pitch: float, roll: float
) -> None:
    pose = HeadPose(yaw, pitch, roll)
    assert np.allclose(pose.rotation(), rotation(yaw, pitch, roll))
    assert HeadPose.from_json(pose.to_json()) == pose
    measured = head_pose(project(yaw, pitch, roll))
    assert np.allclose(measured.rotation(), rotation(yaw, pitch, roll), atol=0.06)
    axes = pose.image_axes(100.0)  # x right, y down in the image
    if yaw > 0:
        assert axes[2, 0] > 0  # facing the viewer's right: the z axis points right
    assert axes[1, 1] < 0 if abs(roll) < 45 else True  # the up axis points up
