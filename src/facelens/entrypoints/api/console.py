"""The web console: one page and its ES modules, served from files inside the package.

Nothing is fetched from elsewhere and nothing is built: the files in `static/` are what
the browser runs. Every console response carries a strict Content-Security-Policy (no
inline script or style, no eval, same-origin calls only, never framed), so a string an
attacker placed in a task (callback_params, URLs) cannot run even if it slipped past the
console's textContent rendering. The console calls the public API like any client.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from facelens.core.errors import NotFound

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob: https: http:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""Images may come from any http(s) URL (the user's own image URLs) or a blob: of a
file chosen in the page; everything else only from this origin."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Small files; revalidating keeps a browser from running an old module after an upgrade.
    "Cache-Control": "no-cache",
}

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(?:js|css|svg)$")
"""Asset names: one flat directory, no dots but the extension, so no path escapes it."""


def _file(name: str) -> Response:
    path = STATIC_DIR / name
    if not path.is_file():
        raise NotFound(f"console file {name}")
    return Response(
        path.read_bytes(), media_type=_CONTENT_TYPES[path.suffix], headers=SECURITY_HEADERS
    )


@router.api_route("/", methods=["GET", "HEAD"])
def console_page() -> Response:
    """The console's single page; the hash part of the URL picks the view. HEAD too:
    uptime checks and link checkers probe `/` with it (the server sends no body)."""
    return _file("index.html")


@router.get("/console/{name}")
def console_asset(name: str) -> Response:
    if not _NAME.match(name):
        raise NotFound(f"console file {name}")
    return _file(name)
