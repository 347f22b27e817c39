"""Submit -> worker -> real detector -> two signed callbacks, over real HTTP on loopback."""

from __future__ import annotations

import io
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

from facelens.adapters.store.sql_store import open_store
from facelens.core.webhooks.signing import verify
from tests.integration.conftest import (
    FACE_IMAGES,
    ImageHost,
    Service,
    StartService,
    assert_envelope,
    eventually,
    receiver,
    wait_requests,
)
from tests.support.servers import RecordedRequest, Reply

START_FIELDS = {"task_id", "creation_id", "start_time", "process_status", "request_context"}
COMPLETE_FIELDS = START_FIELDS | {
    "end_time",
    "cost_time",
    "result_code",
    "error_code",
    "error_info",
    "result_list",
    "image",
}
LANDMARKS = {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}


def by_task(requests: list[RecordedRequest]) -> dict[str, list[tuple[RecordedRequest, Any]]]:
    grouped: dict[str, list[tuple[RecordedRequest, Any]]] = defaultdict(list)
    for request in requests:
        body = json.loads(request.body)
        grouped[body["task_id"]].append((request, body))
    return grouped


async def settle(service: Service, task_ids: list[int], within: float = 30.0) -> None:
    await eventually(lambda: service.tasks_settled(task_ids), within, "tasks to settle", 0.05)


async def test_a_batch_finds_faces_with_two_signed_callbacks_per_task(
    start_service: StartService, images: ImageHost, dev_images: Path
) -> None:
    service = await start_service(credits=10)
    chosen = FACE_IMAGES[:3]
    params = [{"user_id": i, "timestamp": f"00:00:0{i}", "nested": {"k": [i]}} for i in range(3)]
    with receiver() as hook:
        before_ms = int(time.time() * 1000)
        answer = await service.submit(
            [images.url(name) for name in chosen], hook.url("/cb?src=x"), params
        )
        assert_envelope(answer, 100000)
        ids = answer["data"]["task_id_list"]
        creation_id = answer["data"]["creation_id"]
        requests = await wait_requests(hook, 6, within=30)
        after_ms = int(time.time() * 1000)

    assert len(requests) == 6
    grouped = by_task(requests)
    assert sorted(grouped) == sorted(str(i) for i in ids)
    secret = service.account.webhook_secret
    for index, (task_id, name) in enumerate(zip(ids, chosen, strict=True)):
        (start_req, start), (done_req, done) = grouped[str(task_id)]
        for request in (start_req, done_req):
            assert request.method == "POST" and request.path == "/cb?src=x"
            assert request.headers["content-type"].startswith("application/json")
            assert verify(secret, request.headers, request.body, int(time.time()))
            assert not verify(secret, request.headers, request.body + b" ", int(time.time()))
            assert not verify("whsec_" + "A" * 44, request.headers, request.body, int(time.time()))
        assert start_req.headers["webhook-id"] == f"msg_{task_id}_1"
        assert done_req.headers["webhook-id"] == f"msg_{task_id}_2"
        assert start_req.time <= done_req.time

        assert set(start) == START_FIELDS
        assert start["task_id"] == str(task_id) and start["creation_id"] == creation_id
        assert start["process_status"] == 1
        assert start["request_context"] == params[index]
        assert type(start["start_time"]) is int
        assert before_ms <= start["start_time"] <= after_ms

        assert set(done) == COMPLETE_FIELDS
        assert {k: done[k] for k in START_FIELDS - {"process_status"}} == {
            k: start[k] for k in START_FIELDS - {"process_status"}
        }
        assert done["process_status"] == 2
        assert done["result_code"] == 1
        assert done["error_code"] == "" and done["error_info"] == ""
        assert type(done["end_time"]) is int and start["start_time"] <= done["end_time"] <= after_ms
        assert isinstance(done["cost_time"], float) and done["cost_time"] >= 0
        assert abs(done["cost_time"] - (done["end_time"] - start["start_time"]) / 1000) < 0.002
        with Image.open(dev_images / name) as photo:
            assert done["image"] == {"width": photo.width, "height": photo.height}
        faces = done["result_list"]
        assert len(faces) >= 1
        areas = [face["width"] * face["height"] for face in faces]
        assert areas == sorted(areas, reverse=True)
        for face in faces:
            assert face["x"] >= 0 and face["x"] + face["width"] <= done["image"]["width"] + 1
            assert face["y"] >= 0 and face["y"] + face["height"] <= done["image"]["height"] + 1
            assert 0 < face["score"] <= 1
            assert set(face["landmarks"]) == LANDMARKS

    for task_id in ids:
        data = await service.task(task_id)
        assert data["status"] == "succeeded"
        assert [d["status"] for d in data["deliveries"]] == ["delivered", "delivered"]
    info = await service.account_info()
    assert info["credits"] == 7 and info["usage"]["credits_refunded"] == 0


def exif_rotated(photo: Image.Image, orientation: int) -> bytes:
    """A JPEG of `photo`'s pixels, unrotated, tagged to be shown rotated."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def jpeg(photo: Image.Image, quality: int = 95) -> bytes:
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=quality)
    return out.getvalue()


def iou(a: dict[str, float], b: dict[str, float]) -> float:
    ax2, ay2 = a["x"] + a["width"], a["y"] + a["height"]
    bx2, by2 = b["x"] + b["width"], b["y"] + b["height"]
    w = max(0.0, min(ax2, bx2) - max(a["x"], b["x"]))
    h = max(0.0, min(ay2, by2) - max(a["y"], b["y"]))
    inter = w * h
    return inter / (a["width"] * a["height"] + b["width"] * b["height"] - inter)


async def test_exif_orientation_is_applied_before_detection(
    start_service: StartService, images: ImageHost, dev_images: Path
) -> None:
    """Orientation 6 (shown rotated 90 degrees clockwise) and 8 (counter-clockwise):
    the reported size is swapped and the boxes match detections on the same photo
    physically rotated, not on the stored pixels."""
    service = await start_service(credits=10)
    with Image.open(dev_images / FACE_IMAGES[3]) as opened:
        photo = opened.convert("RGB")
    cases = {
        6: photo.transpose(Image.Transpose.ROTATE_270),
        8: photo.transpose(Image.Transpose.ROTATE_90),
    }
    urls = []
    for orientation, rotated in cases.items():
        urls.append(
            images.add(
                f"/exif{orientation}.jpg",
                Reply(200, {"Content-Type": "image/jpeg"}, exif_rotated(photo, orientation)),
            )
        )
        urls.append(
            images.add(
                f"/rotated{orientation}.jpg",
                Reply(200, {"Content-Type": "image/jpeg"}, jpeg(rotated)),
            )
        )
    with receiver() as hook:
        answer = await service.submit(urls, hook.url("/cb"))
        ids = answer["data"]["task_id_list"]
        await settle(service, ids)
    results = [await service.task(task_id) for task_id in ids]
    for (exif_result, rotated_result), rotated in zip(
        [results[0:2], results[2:4]], cases.values(), strict=True
    ):
        assert exif_result["result_code"] == 1 and rotated_result["result_code"] == 1
        expected_size = {"width": photo.height, "height": photo.width}
        assert rotated.size == (photo.height, photo.width)
        assert exif_result["image"] == expected_size == rotated_result["image"]
        confident = [face for face in rotated_result["result_list"] if face["score"] >= 0.6]
        assert len(confident) >= 2
        for face in confident:
            best = max(iou(face, other) for other in exif_result["result_list"])
            assert best >= 0.7, (face, exif_result["result_list"])


async def test_unreadable_images_fail_with_distinct_codes_and_are_refunded(
    start_service: StartService, images: ImageHost, dev_images: Path
) -> None:
    service = await start_service(credits=10, max_image_bytes=60_000)
    with Image.open(dev_images / FACE_IMAGES[1]) as opened:
        small = opened.convert("RGB").resize((512, 345))
    good = jpeg(small, quality=70)
    assert len(good) < 60_000 < (dev_images / FACE_IMAGES[0]).stat().st_size
    urls = [
        images.server.url("/nothing-here.jpg"),
        images.add(
            "/page.jpg", Reply(200, {"Content-Type": "text/html"}, b"<html><p>hi</p></html>" * 20)
        ),
        images.url(FACE_IMAGES[0]),
        images.add("/small.jpg", Reply(200, {"Content-Type": "image/jpeg"}, good)),
    ]
    with receiver() as hook:
        answer = await service.submit(urls, hook.url("/cb"))
        ids = answer["data"]["task_id_list"]
        await settle(service, ids)
        completes = {
            body["task_id"]: body
            for body in (json.loads(r.body) for r in hook.requests)
            if body["process_status"] == 2
        }
    codes = []
    for task_id in ids[:3]:
        done = completes[str(task_id)]
        data = await service.task(task_id)
        assert done["result_code"] == -1 == data["result_code"]
        assert data["status"] == "failed"
        assert done["error_code"] == data["error_code"] and done["error_info"]
        assert done["result_list"] == []
        codes.append(done["error_code"])
    assert codes[0] == "IMAGE_DOWNLOAD_FAILED"
    assert codes[1] in ("IMAGE_DECODE_FAILED", "IMAGE_FORMAT_UNSUPPORTED")
    assert codes[2] == "IMAGE_TOO_LARGE"
    assert completes[str(ids[3])]["result_code"] == 1

    info = await service.account_info()
    assert info["credits"] == 9
    assert info["usage"]["credits_charged"] == 4
    assert info["usage"]["credits_refunded"] == 3
    store = await open_store(service.database_url)
    try:
        assert await store.ledger_sum(service.account.id) == info["credits"]
    finally:
        await store.close()
