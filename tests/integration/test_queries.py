"""Query endpoints, ops endpoints, the synchronous endpoint, and racing submissions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from facelens.adapters.store.sql_store import open_store
from facelens.entrypoints.admin import create_account
from tests.integration.conftest import (
    FACE_IMAGES,
    ImageHost,
    Service,
    StartService,
    assert_envelope,
    bearer,
    eventually,
    receiver,
)


async def ledger_sum(service: Service) -> int:
    store = await open_store(service.database_url)
    try:
        return await store.ledger_sum(service.account.id)
    finally:
        await store.close()


async def test_task_and_creation_queries_are_scoped_to_the_account(
    start_service: StartService, images: ImageHost
) -> None:
    service = await start_service(credits=10)
    with receiver() as hook:
        answer = await service.submit([images.url(FACE_IMAGES[0])], hook.url("/cb"), [{"order": 7}])
        (task_id,) = answer["data"]["task_id_list"]
        creation_id = answer["data"]["creation_id"]
        await eventually(lambda: service.tasks_settled([task_id]), 30, "the task to settle")

    data = await service.task(task_id)
    assert data["task_id"] == str(task_id) and data["creation_id"] == creation_id
    assert data["status"] == "succeeded" and data["process_status"] == 2
    assert data["result_code"] == 1 and len(data["result_list"]) >= 1
    assert data["image"]["width"] > 0 and data["request_context"] == {"order": 7}
    assert data["target_image_url"] == images.url(FACE_IMAGES[0])
    assert [d["process_status"] for d in data["deliveries"]] == [1, 2]
    for delivery in data["deliveries"]:
        assert delivery["status"] == "delivered" and delivery["attempts"] == 1
        assert delivery["last_http_status"] == 200
        assert [h["http_status"] for h in delivery["history"]] == [200]

    creation = (await service.get(f"/api/aigc/creation/{creation_id}")).json()
    assert_envelope(creation, 100000)
    assert [t["task_id"] for t in creation["data"]["tasks"]] == [str(task_id)]

    other = await create_account(service.settings, "mallory", 10)
    for path in (f"/api/aigc/task/{task_id}", f"/api/aigc/creation/{creation_id}"):
        foreign = await service.get(path, other.api_key)
        missing = await service.get(
            path.replace(str(task_id), "999999").replace(creation_id, "0" * 32)
        )
        for response in (foreign, missing):
            assert response.status_code == 404
            assert set(response.json()) == {"code", "message", "data"}
            assert response.json()["code"] != 100000 and response.json()["data"] is None
        # the answer for someone else's task is the answer for no task at all
        assert foreign.json()["code"] == missing.json()["code"]
        assert service.account.name not in foreign.text


async def test_ops_endpoints_answer(start_service: StartService) -> None:
    service = await start_service()
    health = await service.client.get("/healthz")
    assert health.status_code == 200
    assert_envelope(health.json(), 100000)
    ready = await service.client.get("/readyz")
    assert ready.status_code == 200
    assert_envelope(ready.json(), 100000)
    assert ready.json()["data"]["database"] == "ok" and ready.json()["data"]["model"]
    docs = await service.client.get("/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    schema = (await service.client.get("/openapi.json")).json()
    for path in ("/api/aigc/task/submit", "/api/aigc/task/{task_id}", "/api/face/detect"):
        assert path in schema["paths"]


async def test_synchronous_detect_charges_one_credit_and_refunds_failures(
    start_service: StartService, dev_images: Path
) -> None:
    service = await start_service(credits=5)
    photo = (dev_images / FACE_IMAGES[3]).read_bytes()
    response = await service.client.post(
        "/api/face/detect",
        headers=bearer(service.api_key),
        files={"file": ("couple.jpg", photo, "image/jpeg")},
    )
    answer = response.json()
    assert_envelope(answer, 100000)
    assert answer["data"]["result_code"] == 1
    assert len(answer["data"]["result_list"]) >= 2
    assert answer["data"]["image"] == {"width": 1024, "height": 683}
    info = await service.account_info()
    assert info["credits"] == 4 and info["usage"]["credits_charged"] == 1

    response = await service.client.post(
        "/api/face/detect",
        headers=bearer(service.api_key),
        files={"file": ("notes.txt", b"these are not pixels" * 10, "text/plain")},
    )
    answer = response.json()
    assert_envelope(answer, 100000)
    assert answer["data"]["result_code"] == -1
    assert answer["data"]["error_code"] in ("IMAGE_DECODE_FAILED", "IMAGE_FORMAT_UNSUPPORTED")
    assert answer["data"]["result_list"] == []
    info = await service.account_info()
    assert info["credits"] == 4
    assert info["usage"]["credits_charged"] == 2 and info["usage"]["credits_refunded"] == 1
    assert await ledger_sum(service) == 4


async def test_racing_clients_never_overdraw_the_balance(start_service: StartService) -> None:
    """Several clients on their own connections race 1- and 2-task submissions on a
    balance of 7: the accepted tasks are worth exactly 7, the balance never goes below
    zero, and it always equals the ledger sum."""
    service = await start_service(credits=7, refund_failed=False)
    callback = "http://127.0.0.1:9/cb"
    payloads: list[dict[str, Any]] = [
        {
            "aigc_type": "face_detect",
            "callback_url": callback,
            "task_list": [
                {"additional_params": {"target_image_url": f"http://127.0.0.1:9/{i}-{j}.jpg"}}
                for j in range(1 + i % 2)
            ],
        }
        for i in range(24)
    ]
    clients = [httpx.AsyncClient(base_url=service.base_url, timeout=30) for _ in range(4)]
    seen_balances: list[int] = []
    racing = True

    async def watch() -> None:
        while racing:
            seen_balances.append((await service.account_info())["credits"])
            await asyncio.sleep(0.005)

    try:
        watcher = asyncio.create_task(watch())
        responses = await asyncio.gather(
            *(
                clients[i % len(clients)].post(
                    "/api/aigc/task/submit", headers=bearer(service.api_key), json=payload
                )
                for i, payload in enumerate(payloads)
            )
        )
        racing = False
        await watcher
    finally:
        for client in clients:
            await client.aclose()
    answers = [response.json() for response in responses]
    for answer in answers:
        assert answer["code"] in (100000, 100040), answer
    accepted = [a for a in answers if a["code"] == 100000]
    assert sum(a["data"]["credits_consumed"] for a in accepted) in (6, 7)
    info = await service.account_info()
    assert info["credits"] == 7 - sum(a["data"]["credits_consumed"] for a in accepted)
    assert info["credits"] in (0, 1)
    assert all(balance >= 0 for balance in seen_balances)
    assert await ledger_sum(service) == info["credits"]
    assert info["usage"]["credits_charged"] == 7 - info["credits"]
    ids = [i for a in accepted for i in a["data"]["task_id_list"]]
    assert len(ids) == len(set(ids)) == 7 - info["credits"]
