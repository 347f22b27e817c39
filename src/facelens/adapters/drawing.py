"""Annotated copies of images: boxes, scores and landmarks drawn with Pillow.

Used by `facelens detect --draw`. Faces are in the oriented original's coordinates;
the decoded pixels may be reduced (`DecodedImage.scale`), so coordinates are scaled to
the pixels before drawing. Line widths grow with the image so boxes stay visible on
large photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from facelens.core.domain import LANDMARK_NAMES, DecodedImage, Face

BOX_COLOR = (0, 255, 0)
TEXT_COLOR = (0, 0, 0)
LANDMARK_COLORS: dict[str, tuple[int, int, int]] = dict(
    zip(
        LANDMARK_NAMES,
        ((255, 0, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)),
        strict=True,
    )
)
"""Viewer's left eye red, right eye blue: a swapped pair is visible at a glance."""


def draw_faces(image: DecodedImage, faces: Sequence[Face]) -> Image.Image:
    """A new RGB image with every face's box, score and landmarks drawn."""
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
        label = f"{face.score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), label, font=font)
        text_y = max(0.0, y1 - (bottom - top) - 2)
        draw.rectangle(
            (x1, text_y, x1 + (right - left) + 2, text_y + (bottom - top) + 2), fill=BOX_COLOR
        )
        draw.text((x1 + 1, text_y), label, fill=TEXT_COLOR, font=font)
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
