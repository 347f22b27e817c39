"""Video tasks end to end: the real service (API + worker + dispatcher on SQLite), a
loopback host serving clips made here from dev photos, a loopback webhook receiver.

Checked from outside, as a client sees it: the submit answer and its credits, the two
callbacks (one start, one complete), the complete callback's video fields, the query
API, the balance and the ledger. Hostile files end in result_code -1 with a stable
code, cost nothing, and the same worker then finishes an ordinary task.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.ext.asyncio import create_async_engine

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
from tests.integration.test_operations import samples, scrape, value
from tests.support import hostile_videos as hv
from tests.support.clips import View, make_clip
from tests.support.servers import HttpServer, Reply

PHOTO = FACE_IMAGES[0]


def still_clip(dev_images: Path, path: Path, seconds: float = 3.0) -> Path:
    """A clip whose every frame is the whole photo (the faces stay put)."""
    with Image.open(dev_images / PHOTO) as photo:
        width, height = photo.size
    width = min(width, int(height * 16 / 9))
    views = [View(width / 2, height / 2, width)] * round(seconds * 25)
    clip = make_clip(
        dev_images / PHOTO, np.zeros((0, 4)), path, fps=Fraction(25), seconds=seconds, views=views
    )
    return clip.path


def serve_file(images: ImageHost, route: str, path: Path, content_type: str = "video/mp4") -> str:
    return images.add(route, Reply(200, {"Content-Type": content_type}, path.read_bytes()))


async def submit_video(service: Service, url: str, callback: str, **params: Any) -> dict[str, Any]:
    body = {
        "aigc_type": "face_detect",
        "callback_url": callback,
        "task_list": [{"additional_params": {"target_video_url": url, **params}}],
    }
    response = await service.client.post(
        "/api/aigc/task/submit", headers=bearer(service.api_key), json=body
    )
    answer: dict[str, Any] = response.json()
    return answer


def callbacks_of(hook: HttpServer, task_id: int) -> dict[int, list[dict[str, Any]]]:
    seen: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for request in hook.requests:
        body = json.loads(request.body)
        if body["task_id"] == str(task_id):
            seen[body["process_status"]].append(body)
    return seen


async def ledger_sum(service: Service) -> int:
    engine = create_async_engine(service.database_url)
    try:
        async with engine.connect() as conn:
            total = await conn.execute(
                sa.text("SELECT coalesce(sum(delta), 0) FROM ledger WHERE account_id = :a"),
                {"a": service.account.id},
            )
            return int(total.scalar_one())
    finally:
        await engine.dispose()


async def settled(service: Service, hook: HttpServer, task_id: int) -> dict[str, Any]:
    await eventually(lambda: service.tasks_settled([task_id]), 120, "the video task to settle")
    await eventually(lambda: bool(callbacks_of(hook, task_id)[2]), 20, "the complete callback")
    seen = callbacks_of(hook, task_id)
    assert len(seen[1]) == 1 and len(seen[2]) == 1, seen
    return seen[2][0]


async def test_video_task_end_to_end(
    start_service: StartService, images: ImageHost, dev_images: Path, tmp_path: Path
) -> None:
    service = await start_service(credits=100)
    url = serve_file(images, "/clip.mp4", still_clip(dev_images, tmp_path / "clip.mp4"))
    with receiver() as hook:
        answer = await submit_video(
            service, url, hook.url("/cb"), frame_interval_ms=500, max_frames=20, landmarks="none"
        )
        assert_envelope(answer, 100000)
        assert answer["data"]["credits_consumed"] == 20  # max_frames reserved
        assert (await service.account_info())["credits"] == 80
        [task_id] = answer["data"]["task_id_list"]
        done = await settled(service, hook, task_id)
    assert done["result_code"] == 1, done
    assert done["video"] == {
        "width": 640,
        "height": 360,
        "duration_ms": 3000,
        "fps": 25.0,
        "codec": "h264",
        "frames_analysed": 6,
    }
    assert done["image"] == {"width": 640, "height": 360}
    faces = done["result_list"]
    assert {f["frame"] for f in faces} == {0, 13, 25, 38, 50, 63}
    assert {f["timestamp_ms"] for f in faces} == {0, 520, 1000, 1520, 2000, 2520}
    order = [(f["timestamp_ms"], -f["width"] * f["height"]) for f in faces]
    assert order == sorted(order)
    assert all("landmarks" not in f and isinstance(f["track_id"], int) for f in faces)
    tracks = done["tracks"]
    assert tracks and {t["track_id"] for t in tracks} == {f["track_id"] for f in faces}
    steady = [t for t in tracks if t["frames"] == 6]  # a still scene: faces keep their ids
    assert steady and all(t["first_ms"] == 0 and t["last_ms"] == 2520 for t in steady)
    assert all("timestamp_ms" in t["best"] and "frame" in t["best"] for t in tracks)
    # 6 analysed frames cost 6 credits; 14 of the 20 reserved came back with a ledger row
    account = await service.account_info()
    assert account["credits"] == 94 == await ledger_sum(service)
    view = await service.task(task_id)
    assert view["status"] == "succeeded" and view["result_list"] == faces
    assert view["video"] == done["video"] and view["tracks"] == tracks


async def test_long_video_in_segments_one_complete_callback(
    start_service: StartService, images: ImageHost, dev_images: Path, tmp_path: Path
) -> None:
    service = await start_service(credits=100, video_segment_seconds=1.0)
    url = serve_file(images, "/clip.mp4", still_clip(dev_images, tmp_path / "clip.mp4"))
    progress: list[dict[str, int]] = []

    async def running_with_progress() -> bool:
        view = await service.task(task_id)
        if view["status"] == "running" and "progress" in view:
            progress.append(view["progress"])
        return view["status"] in ("succeeded", "failed")

    with receiver() as hook:
        answer = await submit_video(
            service, url, hook.url("/cb"), frame_interval_ms=400, max_frames=20
        )
        [task_id] = answer["data"]["task_id_list"]
        await eventually(running_with_progress, 120, "the task to end", interval=0.01)
        done = await settled(service, hook, task_id)
    assert progress, "GET /api/aigc/task/{id} shows progress while the video runs"
    assert all(p["frames_total"] == 8 and 0 <= p["frames_done"] <= 8 for p in progress)
    assert done["result_code"] == 1 and done["video"]["frames_analysed"] == 8
    steady = [t for t in done["tracks"] if t["frames"] == 8]
    assert steady, "a face present in every frame keeps one track id across 3 segments"
    assert (await service.account_info())["credits"] == 100 - 8 == await ledger_sum(service)


async def test_hostile_videos_fail_cleanly_then_an_image_succeeds(
    start_service: StartService, images: ImageHost, tmp_path: Path
) -> None:
    # 400 MB of address space for a decoding child: enough for every small file here,
    # not for 8K frames (the memory limit ends that task, not the worker).
    service = await start_service(credits=1000, video_decode_memory_mb=400)
    uhd = hv.h264_clip(tmp_path / "8k.mp4", frames=2, width=7680, height=4320)
    hostile = {
        "/truncated.mp4": (hv.truncated_mp4(tmp_path), "VIDEO_DECODE_FAILED"),
        "/random.mp4": (hv.random_bytes(tmp_path), "VIDEO_FORMAT_UNSUPPORTED"),
        "/audio.mp4": (hv.audio_only(tmp_path), "NO_VIDEO_STREAM"),
        "/sparse.mkv": (hv.sparse_long(tmp_path), "VIDEO_TOO_LONG"),
        "/canvas.gif": (hv.huge_canvas_gif(tmp_path), "VIDEO_TOO_LARGE"),
        "/cut-index.mp4": (hv.truncated_faststart_mp4(tmp_path), "VIDEO_DECODE_FAILED"),
        "/empty.mp4": (hv.zero_frames(tmp_path), "NO_VIDEO_STREAM"),
        "/streams.mkv": (hv.many_streams(tmp_path), "VIDEO_FORMAT_UNSUPPORTED"),
        "/many.gif": (hv.gif_10000_frames(tmp_path), "VIDEO_TOO_LONG"),
        "/8k.mp4": (uhd, "VIDEO_DECODE_FAILED"),
    }
    with receiver() as hook:
        ids: dict[int, str] = {}
        for route, (path, code) in hostile.items():
            url = serve_file(images, route, path)
            answer = await submit_video(service, url, hook.url("/cb"), max_frames=10)
            assert_envelope(answer, 100000)
            ids[answer["data"]["task_id_list"][0]] = code
        image = await service.submit([images.url(PHOTO)], hook.url("/cb"))
        image_id = image["data"]["task_id_list"][0]
        for task_id, code in ids.items():
            done = await settled(service, hook, task_id)
            assert (done["result_code"], done["error_code"]) == (-1, code), done
            assert done["result_list"] == [] and done["tracks"] == []
        ok = await settled(service, hook, image_id)
    assert ok["result_code"] == 1 and ok["result_list"]
    # failed videos cost nothing: only the image's credit is gone
    assert (await service.account_info())["credits"] == 999 == await ledger_sum(service)


async def test_download_limit_and_url_rules(
    start_service: StartService, images: ImageHost, tmp_path: Path
) -> None:
    service = await start_service(credits=1000, max_video_bytes=10_000)
    big = hv.h264_clip(tmp_path / "big.mp4", frames=100)
    with receiver() as hook:
        answer = await submit_video(service, serve_file(images, "/big.mp4", big), hook.url("/cb"))
        [task_id] = answer["data"]["task_id_list"]
        done = await settled(service, hook, task_id)
    assert (done["result_code"], done["error_code"]) == (-1, "VIDEO_TOO_LARGE")
    leftovers = list((service.settings.data_dir / "video-tmp").glob("*"))
    assert leftovers == [], "temporary video files must be deleted"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (
            {"target_image_url": "http://a.example/x.jpg", "target_video_url": "http://a/v.mp4"},
            "target_video_url",
        ),
        ({}, "target_image_url"),
        ({"target_video_url": "http://a.example/v.mp4", "max_frames": 3601}, "max_frames"),
        ({"target_video_url": "http://a.example/v.mp4", "max_frames": 0}, "max_frames"),
        ({"target_video_url": "http://a.example/v.mp4", "frame_interval_ms": -1}, "interval"),
        ({"target_video_url": "http://a.example/v.mp4", "start_ms": 5, "end_ms": 4}, "end_ms"),
        ({"target_video_url": "ftp://a.example/v.mp4"}, "target_video_url"),
    ],
)
async def test_bad_video_requests_are_100010_naming_the_field(
    start_service: StartService, params: dict[str, Any], field: str
) -> None:
    service = await start_service(credits=10_000)
    body = {
        "aigc_type": "face_detect",
        "callback_url": "http://127.0.0.1:9/cb",
        "task_list": [{"additional_params": params}],
    }
    response = await service.client.post(
        "/api/aigc/task/submit", headers=bearer(service.api_key), json=body
    )
    answer = response.json()
    assert_envelope(answer, 100010)
    assert field in answer["message"], answer
    assert (await service.account_info())["credits"] == 10_000


async def test_reservation_counts_in_the_100040_rule(start_service: StartService) -> None:
    service = await start_service(credits=50)
    answer = await submit_video(
        service, "http://127.0.0.1:9/v.mp4", "http://127.0.0.1:9/cb", max_frames=51
    )
    assert_envelope(answer, 100040)
    assert (await service.account_info())["credits"] == 50


async def test_synchronous_endpoint_points_videos_to_the_task_api(
    start_service: StartService, tmp_path: Path
) -> None:
    service = await start_service(credits=10)
    clip = hv.h264_clip(tmp_path / "c.mp4", frames=10)
    response = await service.client.post(
        "/api/face/detect",
        headers=bearer(service.api_key),
        files={"file": ("c.mp4", clip.read_bytes(), "video/mp4")},
    )
    answer = response.json()
    assert_envelope(answer, 100010)
    assert "/api/aigc/task/submit" in answer["message"]
    response = await service.client.post(
        "/api/face/detect",
        headers=bearer(service.api_key),
        json={"video_url": "http://127.0.0.1:9/v.mp4"},
    )
    answer = response.json()
    assert_envelope(answer, 100010)
    assert "/api/aigc/task/submit" in answer["message"]
    assert (await service.account_info())["credits"] == 10


async def ledger_rows(service: Service) -> int:
    engine = create_async_engine(service.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT count(*) FROM ledger WHERE account_id = :a"),
                {"a": service.account.id},
            )
            return int(rows.scalar_one())
    finally:
        await engine.dispose()


async def test_synchronous_endpoint_sniffs_a_video_behind_an_image_url(
    start_service: StartService, images: ImageHost, tmp_path: Path
) -> None:
    service = await start_service(credits=10)
    clip = hv.h264_clip(tmp_path / "c.mp4", frames=10)
    # served as an image: only its bytes say it is a video
    url = serve_file(images, "/photo.jpg", clip, content_type="image/jpeg")
    rows = await ledger_rows(service)
    response = await service.client.post(
        "/api/face/detect", headers=bearer(service.api_key), json={"image_url": url}
    )
    answer = response.json()
    assert_envelope(answer, 100010)
    assert "target_video_url" in answer["message"], answer
    assert "/api/aigc/task/submit" in answer["message"], answer
    # a bad request, not a failed analysis: no charge, no refund, no ledger row
    assert (await service.account_info())["credits"] == 10
    assert await ledger_rows(service) == rows
    response = await service.client.post(
        "/api/face/detect", headers=bearer(service.api_key), json={"image_url": images.url(PHOTO)}
    )
    assert_envelope(response.json(), 100000)
    assert (await service.account_info())["credits"] == 9 == await ledger_sum(service)


async def test_video_tasks_count_in_the_metrics_with_their_stage_timings(
    start_service: StartService, images: ImageHost, dev_images: Path, tmp_path: Path
) -> None:
    service = await start_service(credits=100, video_segment_seconds=1.0, metrics_token="t")
    url = serve_file(images, "/clip.mp4", still_clip(dev_images, tmp_path / "clip.mp4"))
    junk = serve_file(images, "/junk.mp4", hv.random_bytes(tmp_path))
    with receiver() as hook:
        ok = await submit_video(service, url, hook.url("/cb"), frame_interval_ms=400, max_frames=20)
        bad = await submit_video(service, junk, hook.url("/cb"), max_frames=10)
        [ok_id], [bad_id] = ok["data"]["task_id_list"], bad["data"]["task_id_list"]
        assert (await settled(service, hook, ok_id))["video"]["frames_analysed"] == 8
        assert (await settled(service, hook, bad_id))["error_code"] == "VIDEO_FORMAT_UNSUPPORTED"
    found = samples(await scrape(service, "t"))
    assert value(found, "facelens_tasks_finished_total", result="succeeded", error_code="") == 1
    failed = {"result": "failed", "error_code": "VIDEO_FORMAT_UNSUPPORTED"}
    assert value(found, "facelens_tasks_finished_total", **failed) == 1
    # one observation per task and stage, whichever process finished its last segment
    count = "facelens_stage_duration_seconds_count"
    for stage, expected in (("fetch", 2), ("decode", 2), ("detect", 1), ("total", 2)):
        assert value(found, count, stage=stage) == expected, stage
    assert value(found, "facelens_stage_duration_seconds_sum", stage="detect") > 0
    # the task view: fetch = the downloads, decode = waiting on the decoding children,
    # detect = detection summed over the 8 frames (of 3 segments)
    timings = (await service.task(ok_id))["timings"]
    assert all(isinstance(v, int) and v >= 0 for v in timings.values()), timings
    assert timings["detect_ms"] > 0 and timings["decode_ms"] > 0
    assert timings["total_ms"] >= timings["detect_ms"]
    bad_timings = (await service.task(bad_id))["timings"]
    assert bad_timings["fetch_ms"] is not None and bad_timings["decode_ms"] is not None
    assert bad_timings["detect_ms"] is None


async def test_credit_metrics_match_the_ledger_for_videos(
    start_service: StartService, images: ImageHost, dev_images: Path, tmp_path: Path
) -> None:
    service = await start_service(credits=100, metrics_token="t")
    url = serve_file(images, "/clip.mp4", still_clip(dev_images, tmp_path / "clip.mp4"))
    junk = serve_file(images, "/junk.mp4", hv.random_bytes(tmp_path))
    with receiver() as hook:
        ok = await submit_video(service, url, hook.url("/cb"), frame_interval_ms=500, max_frames=20)
        bad = await submit_video(service, junk, hook.url("/cb"), max_frames=10)
        [ok_id], [bad_id] = ok["data"]["task_id_list"], bad["data"]["task_id_list"]
        assert (await settled(service, hook, ok_id))["video"]["frames_analysed"] == 6
        assert (await settled(service, hook, bad_id))["result_code"] == -1
    found = samples(await scrape(service, "t"))
    charged = value(found, "facelens_credits_total", kind="charged")
    refunded = value(found, "facelens_credits_total", kind="refunded")
    assert charged == 20 + 10, "each video's max_frames reserved at submission"
    assert refunded == 14 + 10, "the frames not analysed, and all of a failed video"
    spent = 100 - await ledger_sum(service)
    assert charged - refunded == spent == 6
    assert (await service.account_info())["credits"] == 100 - spent
