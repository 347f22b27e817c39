"""Callback delivery over real HTTP: retry timing, giving up, ordering, restarts."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import Counter

from tests.integration.conftest import (
    FACE_IMAGES,
    ImageHost,
    StartService,
    eventually,
    receiver,
    wait_requests,
)
from tests.support.servers import RecordedRequest


async def test_a_500_is_retried_after_the_first_delay_with_the_same_bytes(
    start_service: StartService, images: ImageHost
) -> None:
    service = await start_service(retry_schedule="0.4,0.8,1.2,1.6")
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def first_fails(request: RecordedRequest) -> int:
        with lock:
            seen[request.headers["webhook-id"]] += 1
            return 500 if seen[request.headers["webhook-id"]] == 1 else 200

    with receiver(first_fails) as hook:
        answer = await service.submit([images.url(FACE_IMAGES[1])], hook.url("/cb"))
        (task_id,) = answer["data"]["task_id_list"]
        requests = await wait_requests(hook, 4, within=20)
        await eventually(lambda: service.tasks_settled([task_id]), 10, "deliveries recorded")
        assert len(hook.requests) == 4
    ids = [r.headers["webhook-id"] for r in requests]
    assert ids == [f"msg_{task_id}_1"] * 2 + [f"msg_{task_id}_2"] * 2
    for first, retry in (requests[0:2], requests[2:4]):
        assert retry.body == first.body
        gap = retry.time - first.time
        assert 0.4 <= gap < 0.4 + 2.0, gap
    # the complete callback waited for the start callback's 200
    assert requests[2].time >= requests[1].time
    data = await service.task(task_id)
    for delivery in data["deliveries"]:
        assert delivery["status"] == "delivered" and delivery["attempts"] == 2
        assert [h["http_status"] for h in delivery["history"]] == [500, 200]


async def test_a_receiver_that_never_says_200_gets_five_attempts_per_callback(
    start_service: StartService, images: ImageHost
) -> None:
    schedule = (0.1, 0.2, 0.3, 0.4)
    service = await start_service(retry_schedule=",".join(map(str, schedule)))
    with receiver(lambda request: 503) as hook:
        answer = await service.submit([images.url(FACE_IMAGES[1])], hook.url("/cb"))
        (task_id,) = answer["data"]["task_id_list"]
        await wait_requests(hook, 10, within=20)
        await eventually(lambda: service.tasks_settled([task_id]), 10, "both to give up")
        await asyncio.sleep(0.6)  # longer than any delay: a sixth attempt would show now
        requests = hook.requests
    assert len(requests) == 10
    ids = [r.headers["webhook-id"] for r in requests]
    assert ids == [f"msg_{task_id}_1"] * 5 + [f"msg_{task_id}_2"] * 5
    for group in (requests[:5], requests[5:]):
        assert len({r.body for r in group}) == 1
        for delay, (before, after) in zip(schedule, itertools.pairwise(group), strict=True):
            assert delay <= after.time - before.time < delay + 2.0
    data = await service.task(task_id)
    assert data["status"] == "succeeded"
    for delivery in data["deliveries"]:
        assert delivery["status"] == "failed"
        assert delivery["attempts"] == 5
        assert delivery["last_http_status"] == 503
        assert delivery["next_attempt_time"] is None
        assert [h["http_status"] for h in delivery["history"]] == [503] * 5


async def test_pending_deliveries_survive_a_restart_and_none_is_sent_twice(
    start_service: StartService, images: ImageHost
) -> None:
    """Stop the service while complete callbacks wait for a retry (start callbacks
    already delivered); start it again on the same SQLite file: every callback arrives,
    and none that got a 200 is sent again."""
    service = await start_service(retry_schedule="1.5,1.5,1.5,1.5")
    lock = threading.Lock()
    is_open = threading.Event()
    log: list[tuple[str, int]] = []

    def policy(request: RecordedRequest) -> int:
        msg_id = request.headers["webhook-id"]
        status = 200 if is_open.is_set() or msg_id.endswith("_1") else 500
        with lock:
            log.append((msg_id, status))
        return status

    with receiver(policy) as hook:
        answer = await service.submit(
            [images.url(name) for name in FACE_IMAGES[:3]], hook.url("/cb")
        )
        ids = answer["data"]["task_id_list"]

        async def completes_pending() -> bool:
            for task_id in ids:
                deliveries = (await service.task(task_id))["deliveries"]
                if len(deliveries) < 2:
                    return False
                start, complete = deliveries
                if start["status"] != "delivered" or complete["attempts"] < 1:
                    return False
                assert complete["status"] == "pending"
            return True

        await eventually(completes_pending, 20, "complete callbacks to wait for a retry")
        await service.stop()
        stopped_at = len(hook.requests)
        is_open.set()
        await service.start()
        await eventually(lambda: service.tasks_settled(ids), 20, "every delivery after restart")
        await asyncio.sleep(0.3)
        with lock:
            final = list(log)
    assert stopped_at >= 6
    expected = {f"msg_{task_id}_{status}" for task_id in ids for status in (1, 2)}
    delivered = Counter(msg_id for msg_id, status in final if status == 200)
    assert set(delivered) == expected
    assert all(count == 1 for count in delivered.values()), delivered
    for msg_id in expected:  # nothing after a 200
        statuses = [status for seen, status in final if seen == msg_id]
        assert statuses.index(200) == len(statuses) - 1
    for task_id in ids:
        data = await service.task(task_id)
        assert [d["status"] for d in data["deliveries"]] == ["delivered", "delivered"]
    bodies = {json.loads(r.body)["task_id"] for r in hook.requests}
    assert bodies == {str(task_id) for task_id in ids}
