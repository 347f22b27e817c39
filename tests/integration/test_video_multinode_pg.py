"""A segmented video task on PostgreSQL with three real worker processes, one of them
killed with SIGKILL in the middle of a segment.

A fresh database, one `facelens serve --no-worker` API process and three `facelens
worker` processes (segments of 1 s, leases of 3 s), a loopback host serving a clip made
here from a dev photo, a loopback receiver answering 200. A worker holding a running
segment is frozen (SIGSTOP), and killed (SIGKILL) once the segment is seen still
running; another worker claims that segment when its lease expires and redoes it. The
task must still end with exactly one start and one complete callback, every sampled
frame analysed once, credits charged == frames analysed, and the ledger summing to the
balance.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.clips import View, make_clip
from tests.support.fleet import (
    DEV_IMAGES,
    Fleet,
    account_of,
    pg_fleet,
    query,
    submit,
)
from tests.support.servers import Reply

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PHOTO = DEV_IMAGES / "WIDER_val" / "images" / "19--Couple" / "19_Couple_Couple_19_1014.jpg"
SECONDS = 8
INTERVAL_MS = 200
FRAMES = SECONDS * 1000 // INTERVAL_MS  # 25 fps: every grid point is a frame


def still_clip(path: Path) -> bytes:
    with Image.open(PHOTO) as photo:
        width, height = photo.size
    width = min(width, int(height * 16 / 9))
    views = [View(width / 2, height / 2, width)] * (SECONDS * 25)
    make_clip(PHOTO, np.zeros((0, 4)), path, fps=Fraction(25), seconds=SECONDS, views=views)
    return path.read_bytes()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Fleet]:
    if not PHOTO.is_file():
        pytest.skip(f"dev photo not found: {PHOTO}")
    clip = ("/clip.mp4", Reply(200, {"Content-Type": "video/mp4"}, still_clip(tmp_path / "c.mp4")))
    logs = tmp_path / "logs"
    logs.mkdir()
    settings = {"lease_seconds": "3", "video_segment_seconds": "1"}
    with pg_fleet("facelens_video", logs, clip, apis=1, workers=3, **settings) as running:
        yield running


def test_worker_killed_mid_segment_one_start_one_complete(cluster: Fleet) -> None:
    key = cluster.new_account(credits=1000)
    account_id, opening = account_of(cluster, key)
    body = {
        "aigc_type": "face_detect",
        "callback_url": cluster.receiver.url("/cb"),
        "task_list": [
            {
                "additional_params": {
                    "target_video_url": cluster.image_url,
                    "frame_interval_ms": INTERVAL_MS,
                    "max_frames": 100,
                }
            }
        ],
    }
    answer = submit(cluster.api_ports[0], key, body)
    assert answer["code"] == 100000, answer
    [task_id] = answer["data"]["task_id_list"]

    # Kill a worker in the middle of a segment: freeze it (SIGSTOP: it commits nothing
    # more), check its segment is still running, then SIGKILL it; if the segment was
    # already done, let the worker go on and try another.
    pids = {proc.pid: proc for proc in cluster.workers}
    deadline = time.monotonic() + 120
    victim = None
    while victim is None:
        rows = query(
            cluster.database_url,
            "SELECT worker_id, seq FROM video_segments WHERE task_id = :t AND status = 'running'",
            t=task_id,
        )
        for worker_id, seq in rows:
            pid = int(str(worker_id).rsplit(":", 1)[-1])
            if pid not in pids:
                continue
            os.kill(pid, signal.SIGSTOP)
            [(status, holder)] = query(
                cluster.database_url,
                "SELECT status, worker_id FROM video_segments WHERE task_id = :t AND seq = :s",
                t=task_id,
                s=seq,
            )
            if status == "running" and holder == worker_id:
                os.kill(pid, signal.SIGKILL)
                victim, killed_seq = pids[pid], seq
                break
            os.kill(pid, signal.SIGCONT)
        assert time.monotonic() < deadline, f"no segment ever ran\n{cluster.log_tails()}"
        time.sleep(0.05)
    victim.wait(timeout=10)

    deadline = time.monotonic() + 240
    while True:
        ids = Counter(r.headers["webhook-id"] for r in cluster.receiver.requests_to("/cb"))
        if ids.get(f"msg_{task_id}_2"):
            break
        assert time.monotonic() < deadline, f"no complete callback\n{cluster.log_tails()}"
        time.sleep(0.25)
    # Both callbacks are recorded delivered, each after one attempt: nothing is left to
    # send, so what the receiver holds now is all it will ever get for this task.
    recorded = "SELECT d.process_status, d.status, count(a.id) FROM deliveries d LEFT JOIN "
    recorded += "delivery_attempts a ON a.delivery_id = d.id WHERE d.task_id = :t "
    recorded += "GROUP BY d.process_status, d.status ORDER BY d.process_status"
    deadline = time.monotonic() + 60
    while (rows := [tuple(r) for r in query(cluster.database_url, recorded, t=task_id)]) != [
        (1, "delivered", 1),
        (2, "delivered", 1),
    ]:
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)
    requests = cluster.receiver.requests_to("/cb")
    ids = Counter(r.headers["webhook-id"] for r in requests)
    assert ids == {f"msg_{task_id}_1": 1, f"msg_{task_id}_2": 1}, ids
    complete = json.loads(next(r.body for r in requests if r.headers["webhook-id"].endswith("_2")))
    assert complete["result_code"] == 1, complete
    assert complete["video"]["frames_analysed"] == FRAMES
    stamps = sorted({face["timestamp_ms"] for face in complete["result_list"]})
    assert len(stamps) == len(set(stamps)) and stamps[-1] < SECONDS * 1000
    steady = [t for t in complete["tracks"] if t["frames"] == FRAMES]
    assert steady, "a face in every frame keeps one track id across all segments"

    segments = query(
        cluster.database_url,
        "SELECT seq, status, attempts FROM video_segments WHERE task_id = :t ORDER BY seq",
        t=task_id,
    )
    assert len(segments) == SECONDS and {row[1] for row in segments} == {"done"}
    assert dict((row[0], row[2]) for row in segments)[killed_seq] >= 2, segments

    _, balance = account_of(cluster, key)
    [(ledger_sum,)] = query(
        cluster.database_url,
        "SELECT coalesce(sum(delta), 0) FROM ledger WHERE account_id = :a",
        a=account_id,
    )
    assert balance == ledger_sum == opening - FRAMES
