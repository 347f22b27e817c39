"""/docs with Swagger UI served by this app, so the docs work offline.

FastAPI's own /docs page loads Swagger UI from a CDN; facelens is self-hosted and often
runs where nothing outside is reachable. The assets come from the `swagger-ui-py`
package (Swagger UI 5, which renders the OpenAPI 3.1 FastAPI writes), read from its
files: the package's Python code is never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response

from facelens.core.errors import NotFound

DOCS_URL = "/docs"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
"""The only files served from the package (no path from the request reaches the disk)."""


def _assets_dir() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("Swagger UI assets (install swagger-ui-py)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def docs_router(title: str, openapi_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_URL)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{DOCS_URL}/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_URL}/assets/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_URL}/assets/favicon-32x32.png",
            oauth2_redirect_url=f"{DOCS_URL}/oauth2-redirect",
        )

    @router.get(f"{DOCS_URL}/oauth2-redirect")
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get(DOCS_URL + "/assets/{name}")
    def asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"docs file {name}")
        body = (_assets_dir() / name).read_bytes()
        return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=86400"})

    return router
