"""/docs in a real browser with every request off loopback refused: Swagger UI comes
from the app itself (offline installs), renders the OpenAPI 3.1 document and offers
the Bearer key through its Authorize button."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser, Route

from tests.browser.conftest import Facelens


def test_docs_render_offline_with_an_authorize_button(browser: Browser, facelens: Facelens) -> None:
    context = browser.new_context()
    refused: list[str] = []

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", loopback_only)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{facelens.base_url}/docs")
        page.locator(".swagger-ui .info .title", has_text="facelens").wait_for()
        page.locator(".opblock-summary-path", has_text="/api/aigc/task/submit").first.wait_for()
        page.get_by_role("button", name="Authorize").first.click()
        page.get_by_text("bearerAuth").first.wait_for()
    finally:
        context.close()
    assert not refused, refused
    assert not errors, errors
