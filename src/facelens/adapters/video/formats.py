"""Which containers a video task accepts, told by magic bytes, never by name or type.

FFmpeg can open far more than we want to expose: playlist and concat demuxers read
other files and URLs, and rarely used demuxers are where its bugs live. So the
container is chosen here from the file's first bytes and FFmpeg is told to use that
demuxer only; anything else is VIDEO_FORMAT_UNSUPPORTED before FFmpeg sees the file.
Animated WebP goes to Pillow (libwebp): the FFmpeg build in PyAV's wheels has no
animated-WebP decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")
ALLOWED_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mjpeg", "gif"})
"""Decoders a video stream may use: the issue's formats plus the two older camera codecs."""
SUPPORTED = "MP4/MOV (H.264, H.265, MPEG-4, MJPEG), WebM/MKV (VP8, VP9, AV1), GIF, WebP"


@dataclass(frozen=True, slots=True)
class Container:
    label: str
    """What the `video` object and messages call it: mp4, mov, webm, mkv, gif, webp."""
    demuxer: str | None
    """The FFmpeg demuxer to force; None = decoded with Pillow (WebP)."""


def sniff_container(head: bytes) -> Container | None:
    """The container these first bytes (64 are enough) announce, or None."""
    if head[4:8] in _ISO_BOXES:
        brand = head[8:12]
        return Container("mov" if brand == b"qt  " else "mp4", "mov")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Container("webm" if b"webm" in head[:64] else "mkv", "matroska")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Container("gif", "gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Container("webp", None)
    return None
