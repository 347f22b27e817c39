"""The API behind the web console, on the real service: task pages, redelivery to a
loopback receiver, usage per day, the webhook secret and the account's own keys."""

from __future__ import annotations

import time
from typing import Any

from facelens.core.webhooks.signing import verify
from facelens.entrypoints.admin import create_account
from tests.integration.conftest import (
    FACE_IMAGES,
    ImageHost,
    StartService,
    assert_envelope,
    bearer,
    eventually,
    receiver,
    wait_requests,
)


async def test_task_pages_filters_and_isolation(
    start_service: StartService, images: ImageHost
) -> None:
    service = await start_service(credits=20)
    other = await create_account(service.settings, "bob", 5)
    with receiver() as hook:
        first = await service.submit(
            [images.url(FACE_IMAGES[0]), images.url("19--Couple/missing.jpg")], hook.url("/cb")
        )
        second = await service.submit([images.url(FACE_IMAGES[1])] * 3, hook.url("/cb"))
        ids = first["data"]["task_id_list"] + second["data"]["task_id_list"]
        await eventually(lambda: service.tasks_settled(ids), 60, "the tasks to settle")

    async def page(key: str | None = None, **query: Any) -> dict[str, Any]:
        answer = await service.client.get(
            "/api/aigc/tasks", params=query, headers=bearer(key or service.api_key)
        )
        body = answer.json()
        assert_envelope(body, 100000)
        data: dict[str, Any] = body["data"]
        return data

    newest_first = [str(task_id) for task_id in sorted(ids, reverse=True)]
    seen: list[str] = []
    query: dict[str, Any] = {"limit": 2}
    while True:
        data = await page(**query)
        seen += [task["task_id"] for task in data["tasks"]]
        if data["next_before_id"] is None:
            break
        query["before_id"] = data["next_before_id"]
    assert seen == newest_first
    full = (await page())["tasks"]
    assert full[0] == await service.task(full[0]["task_id"])  # rows as GET task shows them

    failed = (await page(status="failed"))["tasks"]
    assert [task["task_id"] for task in failed] == [str(first["data"]["task_id_list"][1])]
    assert failed[0]["error_code"] == "IMAGE_DOWNLOAD_FAILED"
    by_creation = (await page(creation_id=second["data"]["creation_id"]))["tasks"]
    assert [task["task_id"] for task in by_creation] == newest_first[:3]
    assert (await page(other.api_key))["tasks"] == []

    for bad in ({"status": "lost"}, {"limit": 0}, {"limit": 101}, {"before_id": "x"}):
        answer = await service.client.get(
            "/api/aigc/tasks", params=bad, headers=bearer(service.api_key)
        )
        assert_envelope(answer.json(), 100010)
    schema = (await service.client.get("/openapi.json")).json()
    for path in ("/api/aigc/tasks", "/api/aigc/task/{task_id}/redeliver", "/api/keys"):
        assert path in schema["paths"]


async def test_redeliver_sends_the_complete_callback_again(
    start_service: StartService, images: ImageHost
) -> None:
    service = await start_service(credits=5)
    down = {"now": False}
    with receiver(lambda request: 500 if down["now"] else 200) as hook:
        answer = await service.submit([images.url(FACE_IMAGES[0])], hook.url("/cb"))
        (task_id,) = answer["data"]["task_id_list"]
        await eventually(lambda: service.tasks_settled([task_id]), 60, "the task to settle")
        _start, complete = await wait_requests(hook, 2)

        url = f"/api/aigc/task/{task_id}/redeliver"
        again = await service.client.post(url, headers=bearer(service.api_key))
        assert_envelope(again.json(), 100000)
        assert again.json()["data"]["webhook_id"] == complete.headers["webhook-id"]
        third = (await wait_requests(hook, 3))[2]
        assert third.body == complete.body
        assert third.headers["webhook-id"] == complete.headers["webhook-id"] == f"msg_{task_id}_2"
        secret = (await service.get("/api/account/webhook-secret")).json()["data"]
        assert verify(secret["webhook_secret"], third.headers, third.body, int(time.time()))

        # A receiver that is down: the redelivery retries and stays the only pending one.
        down["now"] = True
        await eventually(lambda: delivered_again(service, task_id), 20, "the redelivery")
        again = await service.client.post(url, headers=bearer(service.api_key))
        assert_envelope(again.json(), 100000)
        await wait_requests(hook, 4)
        refused = await service.client.post(url, headers=bearer(service.api_key))
        assert_envelope(refused.json(), 100010)
        assert "still being delivered" in refused.json()["message"]
        view = await service.task(task_id)
        complete_view = view["deliveries"][1]
        assert complete_view["status"] == "pending" and complete_view["redelivered_at"]
        assert [d["process_status"] for d in view["deliveries"]] == [1, 2]

        other = await create_account(service.settings, "bob", 5)
        foreign = await service.client.post(url, headers=bearer(other.api_key))
        assert foreign.status_code == 404
        # 10 per minute per key: 2 scheduled and 1 refused so far, then the limit.
        codes = [
            (await service.client.post(url, headers=bearer(service.api_key))).status_code
            for _ in range(8)
        ]
        assert codes[-1] == 429 and 429 not in codes[:7]
    assert all(request.route == "/cb" for request in hook.requests)


async def delivered_again(service: Any, task_id: int) -> bool:
    complete = (await service.task(task_id))["deliveries"][1]
    return bool(complete["status"] == "delivered" and len(complete["history"]) == 2)


async def test_daily_usage_counts_today(start_service: StartService, images: ImageHost) -> None:
    service = await start_service(credits=5)
    with receiver() as hook:
        answer = await service.submit(
            [images.url(FACE_IMAGES[0]), images.url("19--Couple/missing.jpg")], hook.url("/cb")
        )
        ids = answer["data"]["task_id_list"]
        await eventually(lambda: service.tasks_settled(ids), 60, "the tasks to settle")
    body = (await service.get("/api/account/usage")).json()
    assert_envelope(body, 100000)
    days = body["data"]["days"]
    assert len(days) == 30
    today = days[-1]
    assert today["date"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert today["tasks"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 1}
    assert (today["credits_charged"], today["credits_refunded"]) == (2, 1)
    assert all(sum(day["tasks"].values()) == 0 for day in days[:-1])
    week = await service.get("/api/account/usage?days=7")
    assert len(week.json()["data"]["days"]) == 7
    too_many = await service.get("/api/account/usage?days=400")
    assert_envelope(too_many.json(), 100010)


async def test_keys_create_list_and_revoke(start_service: StartService) -> None:
    service = await start_service(credits=1)
    first = service.api_key

    async def keys(key: str) -> list[dict[str, Any]]:
        body = (await service.get("/api/keys", key)).json()
        assert_envelope(body, 100000)
        listed: list[dict[str, Any]] = body["data"]["keys"]
        return listed

    (only,) = await keys(first)
    assert only["in_use"] and first.startswith(only["prefix"]) and only["revoked_time"] is None
    assert only["prefix"] != first  # the prefix names the key, it is not the key

    # The last live key cannot revoke itself.
    refused = await service.client.delete(f"/api/keys/{only['prefix']}", headers=bearer(first))
    assert_envelope(refused.json(), 100010)
    assert "last live key" in refused.json()["message"]

    created = await service.client.post("/api/keys", headers=bearer(first))
    assert created.headers["cache-control"] == "no-store"
    second = created.json()["data"]["key"]
    assert second.startswith(created.json()["data"]["prefix"])
    assert_envelope((await service.get("/api/account", second)).json(), 100000)
    listing = await keys(second)
    assert [key["in_use"] for key in listing] == [False, True]

    other = await create_account(service.settings, "bob", 1)
    foreign = await service.client.delete(f"/api/keys/{other.api_key[:11]}", headers=bearer(first))
    assert foreign.status_code == 404
    assert_envelope((await service.get("/api/account", other.api_key)).json(), 100000)

    revoked = await service.client.delete(f"/api/keys/{only['prefix']}", headers=bearer(second))
    assert_envelope(revoked.json(), 100000)
    assert_envelope((await service.get("/api/account", first)).json(), 100030)
    again = await service.client.delete(f"/api/keys/{only['prefix']}", headers=bearer(second))
    assert again.status_code == 404
    assert [key["revoked_time"] is not None for key in await keys(second)] == [True, False]
