"""What the API shows of itself, on the real service: the console answers HEAD / as
uptime checks send it; the OpenAPI document declares the Bearer key and the answers the
API really sends (never a 422)."""

from __future__ import annotations

import re

from tests.integration.conftest import StartService, bearer


async def test_console_page_answers_head(start_service: StartService) -> None:
    service = await start_service(credits=1)
    got = await service.client.get("/")
    head = await service.client.head("/")
    assert head.status_code == 200, head.status_code
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"] == "text/html; charset=utf-8"
    assert head.headers["content-security-policy"] == got.headers["content-security-policy"]


async def test_openapi_declares_bearer_and_the_answers_actually_sent(
    start_service: StartService,
) -> None:
    service = await start_service(credits=1)
    schema = (await service.client.get("/openapi.json")).json()
    scheme = schema["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    operations = {
        (method.upper(), path): operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert not [op for op, body in operations.items() if "422" in body["responses"]]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    keyed = {op for op, body in operations.items() if body.get("security")}
    assert keyed == {op for op in operations if op[1].startswith("/api/")}, keyed
    task = operations[("GET", "/api/aigc/task/{task_id}")]["responses"]
    assert set(task) == {"200", "404", "429", "503"} and "100010" in task["200"]["description"]
    assert "security" not in operations[("GET", "/healthz")]

    # what the document says is what the API does: no 422, keys checked as before
    bad = await service.client.get("/api/aigc/task/not-a-number", headers=bearer(service.api_key))
    assert (bad.status_code, bad.json()["code"]) == (200, 100010), bad.text
    keyless = await service.client.get("/api/account")
    assert (keyless.status_code, keyless.json()["code"]) == (200, 100030), keyless.text
    keyed_ok = await service.client.get("/api/account", headers=bearer(service.api_key))
    assert keyed_ok.json()["code"] == 100000


async def test_docs_load_swagger_ui_from_the_app_not_a_cdn(start_service: StartService) -> None:
    service = await start_service(credits=1)
    page = await service.client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(url.startswith("/docs/assets/") for url in sources), sources
    assert "cdn." not in page.text and "https://" not in page.text
    for url in sources:
        asset = await service.client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    bundle = await service.client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert (await service.client.get("/docs/assets/..%2Fcore.py")).status_code == 404
    assert (await service.client.get("/docs/assets/index.css")).status_code == 404


async def test_there_is_no_redoc_page_that_would_load_from_a_cdn(
    start_service: StartService,
) -> None:
    service = await start_service(credits=1)
    assert (await service.client.get("/redoc")).status_code == 404
