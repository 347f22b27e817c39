"""Annotated copies of images: boxes, scores, landmarks and head pose drawn with Pillow.

Used by `facelens detect --draw`. Per face:

* the box (green) with the score above it;
* the five landmarks as dots (viewer's left eye red, right eye blue, nose yellow,
  mouth corners magenta / cyan);
* the 68 landmarks when present (`landmarks_68` in the face's extras): the jaw, brows,
  nose, eyes and lips as white outlines;
* the head pose: the face's own axes drawn from the nose tip (x, ear to ear, red;
  y, up, green; z, the direction the face looks, blue) and `yaw pitch roll` in
  degrees under the box. The pose is the face's `pose` extra when the detection
  asked for it, else it is computed here from the five landmarks.

Faces are in the oriented original's coordinates; the decoded pixels may be reduced
(`DecodedImage.scale`), so coordinates are scaled to the pixels before drawing. Line
widths grow with the image so the drawing stays visible on large photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from facelens.adapters.detection.dense_landmarks import CONTOURS, POINTS
from facelens.core.detection.pose import HeadPose, head_pose
from facelens.core.domain import LANDMARK_NAMES, DecodedImage, Face

BOX_COLOR = (0, 255, 0)
TEXT_COLOR = (0, 0, 0)
DENSE_COLOR = (255, 255, 255)
AXIS_COLORS = ((255, 0, 0), (0, 200, 0), (0, 90, 255))
"""The face's x (ear to ear), y (up) and z (facing) axes."""
LANDMARK_COLORS: dict[str, tuple[int, int, int]] = dict(
    zip(
        LANDMARK_NAMES,
        ((255, 0, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)),
        strict=True,
    )
)
"""Viewer's left eye red, right eye blue: a swapped pair is visible at a glance."""


def face_pose(face: Face) -> HeadPose | None:
    """The face's requested pose, else one computed from its five landmarks, else None."""
    pose = face.extras.get("pose")
    if isinstance(pose, dict):
        return HeadPose.from_json(pose)
    if all(name in face.landmarks for name in LANDMARK_NAMES):
        return head_pose([face.landmarks[name] for name in LANDMARK_NAMES])
    return None


def _label(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    above: bool,
) -> None:
    """Text on a green plate whose top-left (or bottom-left when `above`) is at `xy`."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left + 2, bottom - top + 2
    x, y = xy
    y = max(0.0, y - h - 2) if above else y + 2
    draw.rectangle((x, y, x + w, y + h), fill=BOX_COLOR)
    draw.text((x + 1 - left, y + 1 - top), text, fill=TEXT_COLOR, font=font)


def draw_faces(image: DecodedImage, faces: Sequence[Face]) -> Image.Image:
    """A new RGB image with every face's box, score, landmarks and pose drawn."""
    canvas = Image.fromarray(image.pixels).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    s = image.scale
    line = max(1, round(max(canvas.size) / 500))
    dot = line + 1
    font = ImageFont.load_default(size=max(10, line * 7))
    for face in faces:
        x1, y1 = face.x * s, face.y * s
        x2, y2 = (face.x + face.width) * s, (face.y + face.height) * s
        draw.rectangle((x1, y1, x2, y2), outline=BOX_COLOR, width=line)
        _label(draw, (x1, y1), f"{face.score:.2f}", font, above=True)
        dense = face.extras.get("landmarks_68")
        if isinstance(dense, list) and len(dense) == POINTS:
            points = [(float(px) * s, float(py) * s) for px, py in dense]
            thin = max(1, line // 2)
            for start, stop, closed in CONTOURS:
                run = points[start:stop] + (points[start : start + 1] if closed else [])
                draw.line(run, fill=DENSE_COLOR, width=thin)
            for px, py in points:
                draw.ellipse((px - thin, py - thin, px + thin, py + thin), fill=DENSE_COLOR)
        pose = face_pose(face)
        if pose is not None:
            centre = (face.x + face.width / 2, face.y + face.height / 2)
            ox, oy = (c * s for c in face.landmarks.get("nose", centre))
            length = 0.5 * min(face.width, face.height) * s
            for (dx, dy), color in zip(pose.image_axes(length), AXIS_COLORS, strict=True):
                draw.line((ox, oy, ox + dx, oy + dy), fill=color, width=line + 1)
            text = f"yaw {pose.yaw:.0f} pitch {pose.pitch:.0f} roll {pose.roll:.0f}"
            _label(draw, (x1, y2), text, font, above=False)
        for name, (px, py) in face.landmarks.items():
            color = LANDMARK_COLORS.get(name, BOX_COLOR)
            draw.ellipse((px * s - dot, py * s - dot, px * s + dot, py * s + dot), fill=color)
    return canvas


def save_annotated(image: DecodedImage, faces: Sequence[Face], path: Path) -> Path:
    """Draw and save; the format follows the file extension (JPEG at quality 90)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas = draw_faces(image, faces)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        canvas.save(path, quality=90)
    else:
        canvas.save(path)
    return path
