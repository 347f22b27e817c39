"""Head pose (yaw, pitch, roll in degrees) from the five detector landmarks.

Pure NumPy, no model: the five points are fitted to a 3D mean face under weak
perspective (an affine camera, solved by least squares and projected to the nearest
rotation). Five points fix yaw well, pitch only roughly (the nose-to-eyes/mouth
proportions vary between people); expect errors of ~10 degrees, more beyond 45.

Conventions (camera frame: x to the viewer's right, y up, z towards the viewer):

* yaw > 0: the face turns towards the viewer's right (the nose moves to larger image
  x; the person looks to their own left). A horizontally mirrored image negates yaw.
* pitch > 0: the face tilts up (the nose moves up in the image).
* roll > 0: the face is rotated counter-clockwise as the viewer sees it (the eye on the
  image's right is higher). Roll is measured from the eye line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MEAN_FACE_MM = np.array(
    [
        [-32.0, 34.0, -30.0],  # left_eye (the viewer's left)
        [32.0, 34.0, -30.0],  # right_eye
        [0.0, 0.0, 0.0],  # nose tip
        [-26.0, -31.0, -26.0],  # mouth_left
        [26.0, -31.0, -26.0],  # mouth_right
    ]
)
"""A mean adult face in millimetres, nose tip at the origin, y up, z towards the
viewer, in `LANDMARK_NAMES` order (viewer's left first)."""


@dataclass(frozen=True, slots=True)
class HeadPose:
    yaw: float
    pitch: float
    roll: float

    def to_json(self) -> dict[str, float]:
        return {
            "yaw": round(self.yaw, 1),
            "pitch": round(self.pitch, 1),
            "roll": round(self.roll, 1),
        }

    @classmethod
    def from_json(cls, data: dict[str, float]) -> HeadPose:
        return cls(float(data["yaw"]), float(data["pitch"]), float(data["roll"]))

    def rotation(self) -> npt.NDArray[np.float64]:
        """The face's axes in the camera frame, as the columns of a 3x3 rotation.

        Column 0: the face's left-to-right axis (the viewer's right on a frontal face),
        column 1: its up axis, column 2: the direction it faces (towards the viewer
        when frontal). Roll about the view axis after yaw, then pitch:
        `Rz(roll) @ Ry(yaw) @ Rx(-pitch)`, the same convention `head_pose` measures.
        """
        y, p, r = (math.radians(v) for v in (self.yaw, self.pitch, self.roll))
        ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
        rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
        rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
        out: npt.NDArray[np.float64] = rz @ ry @ rx
        return out

    def image_axes(self, length: float) -> npt.NDArray[np.float64]:
        """(3, 2) image-pixel offsets (x right, y down) of the face's x, y, z axes drawn
        `length` pixels long, orthographic projection."""
        rot = self.rotation()
        return np.stack([rot[0] * length, -rot[1] * length], axis=1)


def head_pose(landmarks: npt.ArrayLike) -> HeadPose:
    """Pose of a face from its (5, 2) landmarks in image pixels (x right, y down)."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    up = np.stack([points[:, 0], -points[:, 1]], axis=1)  # y up, like the model
    eye_dx, eye_dy = up[1] - up[0]
    roll = math.atan2(eye_dy, eye_dx)
    # undo the roll so the fit only has yaw and pitch left to explain
    cos, sin = math.cos(-roll), math.sin(-roll)
    centred = up - up.mean(axis=0)
    level = centred @ np.array([[cos, sin], [-sin, cos]])
    model = MEAN_FACE_MM - MEAN_FACE_MM.mean(axis=0)
    affine, *_ = np.linalg.lstsq(model, level, rcond=None)  # (3, 2): level ~ model @ affine
    u, _, vt = np.linalg.svd(affine.T, full_matrices=False)  # nearest 2x3 with orthonormal rows
    rows = u @ vt
    third = np.cross(rows[0], rows[1])
    forward = np.array([rows[0, 2], rows[1, 2], third[2]])  # the model's +z in the camera frame
    yaw = math.atan2(forward[0], forward[2])
    pitch = math.atan2(forward[1], math.hypot(forward[0], forward[2]))
    return HeadPose(math.degrees(yaw), math.degrees(pitch), math.degrees(roll))
