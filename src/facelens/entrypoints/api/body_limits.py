"""How large a request body may be, per path (enforced by `middleware.BodyLimit`).

JSON endpoints share `max_request_bytes`; the upload endpoint takes an image, so its
limit follows `max_image_bytes` plus room for the multipart framing and the options.
A new endpoint that takes media adds its prefix here.
"""

from __future__ import annotations

from facelens.entrypoints.config import Settings

MULTIPART_OVERHEAD_BYTES = 65_536
"""Boundaries, part headers and the `options` field around an uploaded image."""


def body_limits(settings: Settings) -> dict[str, int]:
    """Path prefix -> largest body in bytes; other paths get `settings.max_request_bytes`."""
    return {"/api/face/detect": settings.max_image_bytes + MULTIPART_OVERHEAD_BYTES}
