"""The Pillow decoder: formats, modes, orientation, limits and broken inputs.

Every image is generated here with Pillow (or by hand, for headers Pillow would not
write), so the tests need no fixture files.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from facelens.adapters.images import PillowDecoder, load_image_file, resize_rgb, sniff_format
from facelens.core.errors import ImageDecodeFailed, ImageFormatUnsupported, ImageTooLarge

RED = (220, 30, 30)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png_by_hand(width: int, height: int, depth: int, color: int, rows: bytes | None) -> bytes:
    """A PNG built chunk by chunk; `rows=None` writes the header only (no pixel data)."""
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    body = png_chunk(b"IHDR", header)
    if rows is not None:
        body += png_chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + body + png_chunk(b"IEND", b"")


@pytest.fixture
def decoder() -> PillowDecoder:
    return PillowDecoder()


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("JPEG", {"quality": 95}),
        ("PNG", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
        ("TIFF", {}),
        ("GIF", {}),
    ],
)
def test_each_supported_format_decodes_to_rgb(
    decoder: PillowDecoder, fmt: str, params: dict[str, object]
) -> None:
    data = encode(Image.new("RGB", (48, 32), RED), fmt, **params)
    image = decoder.decode(data, "application/octet-stream")
    assert image.format == fmt
    assert (image.width, image.height, image.scale) == (48, 32, 1.0)
    assert image.pixels.shape == (32, 48, 3) and image.pixels.dtype == np.uint8
    assert np.abs(image.pixels[16, 24].astype(int) - RED).max() <= 8


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF codec")
def test_avif_decodes_when_the_plugin_is_present(decoder: PillowDecoder) -> None:
    image = decoder.decode(encode(Image.new("RGB", (32, 32), RED), "AVIF", quality=90))
    assert image.format == "AVIF" and image.pixels.shape == (32, 32, 3)


def test_animated_gif_gives_its_first_frame(decoder: PillowDecoder) -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in (RED, (0, 0, 255), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    pixel = decoder.decode(data).pixels[5, 5].astype(int)
    assert np.abs(pixel - RED).max() <= 8


def test_grayscale_and_one_bit_become_gray_rgb(decoder: PillowDecoder) -> None:
    gray = decoder.decode(encode(Image.new("L", (10, 10), 77), "PNG"))
    assert gray.pixels[0, 0].tolist() == [77, 77, 77]
    bilevel = decoder.decode(encode(Image.new("1", (10, 10), 1), "BMP"))
    assert bilevel.pixels[0, 0].tolist() == [255, 255, 255]


def test_palette_image_is_expanded(decoder: PillowDecoder) -> None:
    palette = Image.new("RGB", (10, 10), RED).convert("P", palette=Image.Palette.ADAPTIVE)
    assert decoder.decode(encode(palette, "PNG")).pixels[0, 0].tolist() == list(RED)


def test_alpha_is_composited_on_white(decoder: PillowDecoder) -> None:
    rgba = Image.new("RGBA", (10, 10), (*RED, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent black
    rgba.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black
    pixels = decoder.decode(encode(rgba, "PNG")).pixels
    assert pixels[0, 0].tolist() == [255, 255, 255]
    assert 120 <= pixels[0, 1, 0] <= 135
    assert pixels[5, 5].tolist() == list(RED)
    la = Image.new("LA", (4, 4), (0, 0))
    assert decoder.decode(encode(la, "PNG")).pixels[0, 0].tolist() == [255, 255, 255]


def test_palette_transparency_is_composited_on_white(decoder: PillowDecoder) -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, *RED] + [0] * 762)
    image.putpixel((1, 1), 1)
    data = encode(image, "GIF", transparency=0)
    pixels = decoder.decode(data).pixels
    assert pixels[0, 0].tolist() == [255, 255, 255]
    assert pixels[1, 1].tolist() == list(RED)


def test_cmyk_jpeg_becomes_rgb(decoder: PillowDecoder) -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red ink
    pixel = decoder.decode(encode(cmyk, "JPEG", quality=95)).pixels[8, 8].astype(int)
    assert pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def test_sixteen_bit_grayscale_is_rescaled_not_clipped(decoder: PillowDecoder) -> None:
    samples = np.array([[0, 32768, 65535]], dtype=">u2")
    data = png_by_hand(3, 1, 16, 0, b"\x00" + samples.tobytes())
    pixels = decoder.decode(data).pixels
    assert pixels[0, :, 0].tolist() == [0, 128, 255]


def test_sixteen_bit_rgb_keeps_its_colours(decoder: PillowDecoder) -> None:
    samples = np.array([[[65535, 0, 32768]]], dtype=">u2")
    data = png_by_hand(1, 1, 16, 2, b"\x00" + samples.tobytes())
    pixel = decoder.decode(data).pixels[0, 0].tolist()
    assert pixel[0] == 255 and pixel[1] == 0 and 126 <= pixel[2] <= 129


def test_float_tiff_is_rescaled(decoder: PillowDecoder) -> None:
    image = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    pixels = decoder.decode(encode(image, "TIFF")).pixels
    assert pixels[0, :, 0].tolist() == [0, 128, 255]


def exif_jpeg(orientation: int, size: tuple[int, int] = (40, 20)) -> bytes:
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste(RED, (0, 0, 8, 8))  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=95, exif=exif)


def test_exif_rotation_swaps_width_and_height(decoder: PillowDecoder) -> None:
    image = decoder.decode(exif_jpeg(6))  # stored 40x20, shown rotated 90 degrees clockwise
    assert (image.width, image.height) == (20, 40)
    assert image.pixels.shape == (40, 20, 3)
    assert image.pixels[3, 16, 0] > 200 and image.pixels[3, 16, 1] < 80  # now top-right
    upright = decoder.decode(exif_jpeg(1))
    assert (upright.width, upright.height) == (40, 20)
    flipped = decoder.decode(exif_jpeg(3))  # 180 degrees: marker bottom-right
    assert flipped.pixels[17, 37, 1] < 80


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_corrupt_exif_falls_back_to_no_rotation(decoder: PillowDecoder) -> None:
    data = bytearray(exif_jpeg(6))
    start = data.index(b"Exif\x00\x00") + 6
    data[start + 4 : start + 8] = b"\xff\xff\xff\x7f"  # IFD offset far beyond the segment
    image = decoder.decode(bytes(data))
    assert (image.width, image.height) == (40, 20)


def test_pixel_limit_is_checked_from_the_header_before_decoding() -> None:
    header_only = png_by_hand(60000, 60000, 8, 2, None)
    with pytest.raises(ImageTooLarge):
        PillowDecoder().decode(header_only)
    below_pillow_guard = png_by_hand(8000, 8000, 8, 2, None)  # 64 MP, no pixel data at all
    with pytest.raises(ImageTooLarge, match="64000000"):
        PillowDecoder().decode(below_pillow_guard)
    small = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageTooLarge):
        PillowDecoder(max_pixels=9_999).decode(small)
    assert PillowDecoder(max_pixels=10_000).decode(small).width == 100


def test_truncated_jpeg_fails_cleanly(decoder: PillowDecoder) -> None:
    noise = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG")
    with pytest.raises(ImageDecodeFailed):
        decoder.decode(data[: len(data) // 2])


@pytest.mark.parametrize(
    "data",
    [b"\xff\xd8\xff\xe0garbage", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"GIF89a\x01", b"BM\x00"],
)
def test_right_magic_with_broken_data_fails_cleanly(decoder: PillowDecoder, data: bytes) -> None:
    with pytest.raises(ImageDecodeFailed):
        decoder.decode(data)


def test_zero_bytes_is_a_decode_failure(decoder: PillowDecoder) -> None:
    with pytest.raises(ImageDecodeFailed, match="empty"):
        decoder.decode(b"")


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "text/html"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "image/svg+xml"),
        (b"just some text", "image/jpeg"),
        (b"%PDF-1.7\n", "application/pdf"),
    ],
)
def test_non_images_are_unsupported_whatever_their_content_type(
    decoder: PillowDecoder, data: bytes, content_type: str
) -> None:
    with pytest.raises(ImageFormatUnsupported, match="supported"):
        decoder.decode(data, content_type)


def test_sniffing_ignores_the_declared_type() -> None:
    assert sniff_format(encode(Image.new("RGB", (2, 2)), "PNG")) == "PNG"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff_format(b"RIFF\x00\x00\x00\x00AVI ") is None


def big_jpeg() -> bytes:
    image = Image.new("RGB", (4200, 2800), (90, 120, 150))
    image.paste(RED, (4000, 2600, 4200, 2800))
    return encode(image, "JPEG", quality=80)


def test_large_jpeg_is_decoded_reduced_only_when_the_faces_allow_it(
    decoder: PillowDecoder,
) -> None:
    data = big_jpeg()
    reduced = decoder.decode(data)
    assert (reduced.width, reduced.height) == (4200, 2800)
    assert reduced.scale == 0.5 and reduced.pixels.shape == (1400, 2100, 3)
    assert reduced.pixels[-10, -10, 0] > 200  # same content, at half size
    full = decoder.decode(data, min_face_size=20)  # 20 px faces need every pixel
    assert full.scale == 1.0 and full.pixels.shape == (2800, 4200, 3)
    large_faces = decoder.decode(data, min_face_size=200)
    assert large_faces.scale == 0.125


def test_load_image_file_and_resize(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(encode(Image.new("RGB", (30, 20), RED), "PNG"))
    image = load_image_file(path)
    assert (image.width, image.height) == (30, 20)
    assert resize_rgb(image.pixels, 15, 10).shape == (10, 15, 3)
    with pytest.raises(OSError):
        load_image_file(tmp_path / "missing.jpg")
