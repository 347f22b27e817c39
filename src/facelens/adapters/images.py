"""Image bytes to oriented RGB pixels: the only module that decodes with Pillow.

Rules, in order (each failure is a TaskFailure with a stable error code, never a raw
Pillow exception):

1. Format by magic bytes, not by Content-Type or file name: JPEG, PNG, WebP, GIF (first
   frame), BMP, TIFF (first page), and AVIF/HEIC when this Pillow has the plugin.
   Anything else (HTML, SVG, text, PDF...) -> ImageFormatUnsupported. Empty -> decode
   failure.
2. The pixel count is read from the header and checked against `max_pixels` BEFORE any
   pixel data is decoded -> ImageTooLarge. (Pillow's own decompression-bomb guard, at
   ~179 MP, is mapped to the same error.)
3. Reduced decoding (JPEG only): libjpeg can decode at 1/2, 1/4 or 1/8 size for a
   fraction of the cost. It is used only when the detector would shrink the image at
   least that much anyway: the allowed factor is
   `facelens.core.detection.plan.decode_scale(width, height, min_face_size)`, i.e. no
   reduction below a 2048 px long side without `min_face_size`, and with it none that
   would make an m-pixel face smaller than 24 px. `DecodedImage.scale` records it.
4. EXIF orientation is applied (`ImageOps.exif_transpose`); a corrupt EXIF block is
   ignored (the image is used as stored) rather than failing the task.
5. Every mode becomes RGB uint8: grayscale and palette expanded, CMYK converted, 16-bit
   and 32-bit samples rescaled to 8 bits (not clipped), transparency composited on
   white (a transparent background is white on every viewer, not black).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from facelens.core.detection.plan import decode_scale
from facelens.core.domain import DecodedImage
from facelens.core.errors import (
    ImageDecodeFailed,
    ImageFormatUnsupported,
    ImageTooLarge,
    TaskFailure,
)

DEFAULT_MAX_PIXELS = 50_000_000
SUPPORTED = "JPEG, PNG, WebP, GIF, BMP, TIFF"
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
_AVIF_BRANDS = (b"avif", b"avis")


def _has_plugin(name: str) -> bool:
    Image.init()
    return name in Image.OPEN


def sniff_format(data: bytes) -> str | None:
    """The Pillow format name for these bytes' signature, or None when unsupported."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[4:8] == b"ftyp":
        box_size = int.from_bytes(data[:4], "big")
        brands = [data[8:12]] + [data[i : i + 4] for i in range(16, min(box_size, 64), 4)]
        if any(b in _AVIF_BRANDS for b in brands) and _has_plugin("AVIF"):
            return "AVIF"
        if any(b in _HEIF_BRANDS for b in brands) and _has_plugin("HEIF"):
            return "HEIF"
    return None


def _orient(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; on a corrupt EXIF block keep the image as stored."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # any parser error inside Pillow's EXIF reader
        return image


def _to_8bit(samples: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """Rescale integer or float samples of unknown depth to 0..255."""
    values = samples.astype(np.float64)
    top = float(values.max()) if values.size else 0.0
    if np.issubdtype(samples.dtype, np.floating):
        span = 1.0 if top <= 1.0 else max(top, 255.0)
    else:
        span = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    out: npt.NDArray[np.uint8] = np.clip(values * (255.0 / span) + 0.5, 0, 255).astype(np.uint8)
    return out


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB (see module doc, rule 5)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith(("I", "F")):
        gray = Image.fromarray(_to_8bit(np.asarray(image)))
        return gray.convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


class PillowDecoder:
    """`ImageDecoder` (application.ports) on Pillow; stateless, thread-safe."""

    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.max_pixels = max_pixels

    def decode(
        self, data: bytes, content_type: str = "", min_face_size: int | None = None
    ) -> DecodedImage:
        if not data:
            raise ImageDecodeFailed("the image is empty (0 bytes)")
        fmt = sniff_format(data)
        if fmt is None:
            declared = f" (declared {content_type})" if content_type else ""
            raise ImageFormatUnsupported(
                f"not a supported image format{declared}; supported: {SUPPORTED}"
            )
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt])
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"image too large: {exc}") from exc
        except Exception as exc:
            raise ImageDecodeFailed(f"cannot read the {fmt} header: {exc}") from exc
        try:
            return self._decode_opened(image, fmt, min_face_size)
        except TaskFailure:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"image too large: {exc}") from exc
        except Exception as exc:  # truncated data, bad codec streams, unsupported modes
            raise ImageDecodeFailed(f"cannot decode the {fmt} image: {exc}") from exc
        finally:
            image.close()

    def _decode_opened(
        self, image: Image.Image, fmt: str, min_face_size: int | None
    ) -> DecodedImage:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise ImageDecodeFailed(f"the {fmt} header gives an empty size {width}x{height}")
        if width * height > self.max_pixels:
            raise ImageTooLarge(
                f"image is {width}x{height} = {width * height} pixels, "
                f"the limit is {self.max_pixels}"
            )
        reduce = decode_scale(width, height, min_face_size)
        if fmt == "JPEG" and reduce <= 0.5:
            image.draft(None, (math.ceil(width * reduce), math.ceil(height * reduce)))
        image.load()
        stored = image.size
        oriented = _orient(image)
        if oriented.size != stored:  # rotated by 90 degrees: the original's sides swap
            width, height = height, width
        pixels = np.asarray(to_rgb(oriented), dtype=np.uint8)
        return DecodedImage(
            pixels=pixels,
            width=width,
            height=height,
            format=fmt,
            scale=pixels.shape[1] / width,
        )


def load_image_file(
    path: Path, decoder: PillowDecoder | None = None, min_face_size: int | None = None
) -> DecodedImage:
    """Read and decode a local file (the CLI's way in); OSError if it cannot be read."""
    return (decoder or PillowDecoder()).decode(path.read_bytes(), "", min_face_size)


def resize_rgb(pixels: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """RGB pixels resized to width x height (bilinear, anti-aliased when shrinking).

    Shrinking first reduces by an integer factor with a box filter (`reducing_gap=1`):
    ~2.5x faster than a full anti-aliased bilinear pass, and as good for detection.
    """
    resized = Image.fromarray(pixels).resize(
        (width, height), Image.Resampling.BILINEAR, reducing_gap=1.0
    )
    return np.asarray(resized, dtype=np.uint8)
