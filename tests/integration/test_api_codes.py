"""Every code of the submit table, over real HTTP, with the envelope on every answer."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from facelens.adapters.store.sql_store import open_store
from facelens.entrypoints.admin import create_key, revoke_key
from tests.integration.conftest import Service, StartService, assert_envelope, bearer

SUBMIT = "/api/aigc/task/submit"
CALLBACK = "http://127.0.0.1:9/cb"
IMAGE = "http://127.0.0.1:9/a.jpg"


def task(url: str = IMAGE, **extra: Any) -> dict[str, Any]:
    return {"additional_params": {"target_image_url": url}, **extra}


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "aigc_type": "face_detect",
        "callback_url": CALLBACK,
        "task_list": [task()],
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


@pytest.fixture
async def service(start_service: StartService) -> AsyncIterator[Service]:
    # No worker work happens here: the image and callback URLs are never reached
    # before the test ends (port 9 refuses), and failed tasks are refunded anyway.
    yield await start_service(credits=1000, max_request_bytes=20_000, max_tasks_per_request=100)


async def post_json(service: Service, payload: Any, key: str | None = None) -> dict[str, Any]:
    response = await service.client.post(
        SUBMIT, headers=bearer(key or service.api_key), json=payload
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_accepted_answer_has_creation_id_ids_in_order_and_credits(service: Service) -> None:
    answer = await post_json(service, body(task_list=[task(f"{IMAGE}?n={i}") for i in range(3)]))
    assert_envelope(answer, 100000)
    data = answer["data"]
    assert set(data) == {"credits_consumed", "creation_id", "task_id_list"}
    assert re.fullmatch(r"[0-9a-f]{32}", data["creation_id"])
    ids = data["task_id_list"]
    assert len(ids) == 3 and all(type(i) is int for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert data["credits_consumed"] == 3
    for i, task_id in enumerate(ids):
        assert (await service.task(task_id))["target_image_url"] == f"{IMAGE}?n={i}"
    assert (await service.account_info())["usage"]["credits_charged"] == 3


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(aigc_type="face_swap"), "aigc_type"),
        (body(aigc_type=None), "aigc_type"),
        (body(task_list=None), "task_list"),
        (body(task_list=[]), "task_list"),
        (body(task_list=[task() for _ in range(101)]), "task_list"),
        (body(task_list=[task("ftp://127.0.0.1/a.jpg")]), "target_image_url"),
        (body(task_list=[task("file:///etc/passwd")]), "target_image_url"),
        (body(task_list=[task("http://")]), "target_image_url"),
        (body(task_list=[task("not a url at all")]), "target_image_url"),
        (body(task_list=[task(), task("http://exa mple.com/x")]), "task_list[1]"),
        (body(callback_url="gopher://127.0.0.1/cb"), "callback_url"),
        (body(callback_url="http//broken"), "callback_url"),
        (body(task_list=[task(callback_params=[1, 2])]), "callback_params"),
        (body(task_list=[task(callback_params="text")]), "callback_params"),
        (body(task_list=[{"callback_params": {}}]), "additional_params"),
        (body(task_list="nope"), "task_list"),
        ([1, 2, 3], "body"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
async def test_invalid_parameters_name_the_field(
    service: Service, payload: Any, field: str
) -> None:
    answer = await post_json(service, payload)
    assert_envelope(answer, 100010)
    assert answer["data"] is None
    assert field in answer["message"], answer["message"]
    info = await service.account_info()
    assert info["credits"] == 1000 and info["usage"]["credits_charged"] == 0


async def test_bad_json_and_oversized_bodies_are_100010(service: Service) -> None:
    headers = {**bearer(service.api_key), "Content-Type": "application/json"}
    answer = (await service.client.post(SUBMIT, headers=headers, content=b"{not json")).json()
    assert_envelope(answer, 100010)
    assert "body" in answer["message"] and "JSON" in answer["message"]

    huge = body(task_list=[task(callback_params={"pad": "x" * 30_000})])
    response = await service.client.post(SUBMIT, headers=bearer(service.api_key), json=huge)
    assert response.status_code == 200
    assert_envelope(response.json(), 100010)
    assert "body" in response.json()["message"] and "20000" in response.json()["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut while streaming
        yield b'{"aigc_type": "face_detect", "pad": "'
        for _ in range(40):
            yield b"y" * 1000
        yield b'"}'

    # The server answers as soon as the limit is passed and closes the connection while
    # the client may still be sending, so the client sees the 100010 or a cut connection;
    # either way nothing is accepted.
    try:
        response = await service.client.post(SUBMIT, headers=headers, content=chunks())
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
        pass
    else:
        assert_envelope(response.json(), 100010)
        assert "larger than" in response.json()["message"]
    assert (await service.account_info())["usage"]["credits_charged"] == 0


async def test_too_many_tasks_follows_the_setting(start_service: StartService) -> None:
    service = await start_service(credits=10, max_tasks_per_request=2)
    answer = await post_json(service, body(task_list=[task(), task(), task()]))
    assert_envelope(answer, 100010)
    assert "task_list" in answer["message"] and "2" in answer["message"]
    assert_envelope(await post_json(service, body(task_list=[task(), task()])), 100000)


async def test_missing_unknown_and_revoked_keys_are_100030(service: Service) -> None:
    no_key = (await service.client.post(SUBMIT, json=body())).json()
    assert_envelope(no_key, 100030)
    basic = {"Authorization": f"Basic {service.api_key}"}
    assert_envelope((await service.client.post(SUBMIT, json=body(), headers=basic)).json(), 100030)
    unknown = await post_json(service, body(), key=service.api_key[:-4] + "abcd")
    assert_envelope(unknown, 100030)
    assert_envelope((await service.get("/api/account", "fl_nonsense")).json(), 100030)

    second = await create_key(service.settings, service.account.name)
    assert_envelope(await post_json(service, body(), key=second), 100000)
    assert await revoke_key(service.settings, second)
    revoked = await post_json(service, body(), key=second)
    assert_envelope(revoked, 100030)
    assert_envelope((await service.get("/api/aigc/task/1", second)).json(), 100030)
    # the account's other key still works, and nothing was charged for refused requests
    info = await service.account_info()
    assert info["usage"]["credits_charged"] == 1


async def test_insufficient_credits_creates_and_charges_nothing(
    start_service: StartService,
) -> None:
    # No refunds: the unreachable images must not give credits back mid-test.
    service = await start_service(credits=3, refund_failed=False)
    answer = await post_json(service, body(task_list=[task() for _ in range(4)]))
    assert_envelope(answer, 100040)
    assert answer["data"] is None
    info = await service.account_info()
    assert info["credits"] == 3
    assert info["usage"]["credits_charged"] == 0
    assert sum(info["usage"]["tasks"].values()) == 0
    store = await open_store(service.database_url)
    try:
        assert await store.ledger_sum(service.account.id) == 3
    finally:
        await store.close()
    ok = await post_json(service, body(task_list=[task() for _ in range(3)]))
    assert_envelope(ok, 100000)
    assert_envelope(await post_json(service, body()), 100040)


async def test_unexpected_store_failure_is_100099_without_a_stack_trace(
    service: Service, tmp_path: Path
) -> None:
    """A table the API needs disappears (a broken database): the client gets 100099 with
    a request id, never the error's text; the service recovers when it comes back."""
    path = service.database_url.split("///", 1)[1]

    def rename(old: str, new: str) -> None:
        with sqlite3.connect(path, timeout=10) as connection:
            connection.execute(f"ALTER TABLE {old} RENAME TO {new}")

    # In a thread: the service's own transactions must be able to finish meanwhile.
    await asyncio.to_thread(rename, "api_keys", "api_keys_gone")
    try:
        response = await service.client.post(SUBMIT, headers=bearer(service.api_key), json=body())
        answer = response.json()
        assert response.status_code == 500
        assert set(answer) == {"code", "message", "data"}
        assert answer["code"] == 100099 and answer["data"] is None
        rid = response.headers["x-request-id"]
        assert rid in answer["message"]
        for leak in ("Traceback", "api_keys", "sqlite", "SELECT", "Error"):
            assert leak not in answer["message"]
    finally:
        await asyncio.to_thread(rename, "api_keys_gone", "api_keys")
    assert_envelope(await post_json(service, body()), 100000)
