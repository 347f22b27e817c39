"""What the API shows of itself, on the real service: the console answers HEAD / as
uptime checks send it."""

from __future__ import annotations

from tests.integration.conftest import StartService


async def test_console_page_answers_head(start_service: StartService) -> None:
    service = await start_service(credits=1)
    got = await service.client.get("/")
    head = await service.client.head("/")
    assert head.status_code == 200, head.status_code
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"] == "text/html; charset=utf-8"
    assert head.headers["content-security-policy"] == got.headers["content-security-policy"]
