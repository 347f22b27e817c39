"""Graceful SIGTERM of `facelens worker` while video segments run, as real processes.

A SQLite database file, one video task written through the store (a 12 s clip made
here, every frame analysed, segments of 4 s: three), a loopback host serving it, a
loopback webhook receiver and `facelens worker` as a subprocess. SIGTERM is sent once
a segment is running with frames done. With a grace period that outlasts it, the
segments in flight finish; with a 0.5 s grace they are cut and go back to the queue at
once (no wait for their lease). Either way the process exits 0 with no segment left
running, and a second worker finishes the task: exactly one start and one complete
callback, every frame analysed once, balance == ledger.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from facelens.adapters.store.migrate import upgrade
from facelens.adapters.store.sql_store import open_store
from facelens.core.domain import DetectOptions, NewTask
from facelens.core.video import Sampling
from tests.support import hostile_videos as hv
from tests.support.fleet import fleet_env, query
from tests.support.servers import HttpServer, Reply

pytestmark = pytest.mark.slow

FRAMES = 300  # 12 s at 25 fps, all analysed
CREDITS = 400
START_DEADLINE_S = 120.0


async def _prepare(url: str, callback_url: str, video_url: str) -> tuple[int, int]:
    await upgrade(url)
    store = await open_store(url)
    try:
        now = int(time.time() * 1000)
        account = await store.create_account("acme", CREDITS, f"whsec_{uuid.uuid4().hex}", now)
        task = NewTask(
            video_url, {}, DetectOptions(), video=Sampling(interval_ms=0, max_frames=FRAMES)
        )
        [task_id] = await store.submit(account.id, uuid.uuid4().hex, callback_url, [task], now)
        return account.id, task_id
    finally:
        await store.close()


def spawn(env: dict[str, str], logs: Path, name: str, **settings: str) -> subprocess.Popen[bytes]:
    env = {**env, **{f"FACELENS_{k.upper()}": v for k, v in settings.items()}}
    env["ORT_DISABLE_TELEMETRY"] = "1"
    env["XDG_CACHE_HOME"] = str(logs / f"cache-{name}")
    with (logs / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "facelens", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(worker: subprocess.Popen[bytes], within: float, log: Path) -> int:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=within)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=10)
        pytest.fail(f"worker still running {within}s after SIGTERM\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("grace", ["30", "0.5"])
def test_sigterm_during_a_segment_one_complete_callback(tmp_path: Path, grace: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'facelens.db'}"
    clip = hv.h264_clip(tmp_path / "clip.mp4", frames=FRAMES, width=640, height=480)
    logs = tmp_path / "logs"
    logs.mkdir()
    video = Reply(200, {"Content-Type": "video/mp4"}, clip.read_bytes())
    with HttpServer({"/clip.mp4": video}) as host, HttpServer(default=Reply(200)) as hook:
        account_id, task_id = asyncio.run(_prepare(url, hook.url("/cb"), host.url("/clip.mp4")))
        env = fleet_env(url, tmp_path / "data", lease_seconds="30", video_segment_seconds="4")

        def segments() -> list[tuple[str, int, int]]:
            rows = query(url, "SELECT status, frames_done, attempts FROM video_segments")
            return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]

        def callbacks() -> Counter[str]:
            return Counter(r.headers["webhook-id"] for r in hook.requests)

        first = spawn(env, logs, "worker0", stop_grace_seconds=grace)
        try:
            deadline = time.monotonic() + START_DEADLINE_S
            while not any(s == "running" and done > 0 for s, done, _ in segments()):
                assert first.poll() is None, (logs / "worker0.log").read_text()[-3000:]
                assert time.monotonic() < deadline, (logs / "worker0.log").read_text()[-3000:]
                time.sleep(0.05)
            code = stop(first, float(grace) + 30, logs / "worker0.log")
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(timeout=10)
        log = (logs / "worker0.log").read_text(errors="replace")
        assert code == 0 and "Traceback" not in log, log[-3000:]
        # Each segment finished or went back to the queue: none is left running (held
        # under a lease of a process that is gone).
        left = segments()
        assert {status for status, _, _ in left} <= {"done", "queued"}, left
        if grace == "0.5":
            assert "unfinished segments" in log, log[-3000:]
            assert all(attempts == 0 for s, _, attempts in left if s == "queued"), left
        else:
            assert any(status == "done" for status, _, _ in left), left
        assert callbacks()[f"msg_{task_id}_2"] <= 1

        second = spawn(env, logs, "worker1")
        try:
            expected = {f"msg_{task_id}_1": 1, f"msg_{task_id}_2": 1}
            deadline = time.monotonic() + START_DEADLINE_S
            while callbacks() != expected:
                assert max(callbacks().values(), default=0) <= 1, callbacks()
                assert second.poll() is None, (logs / "worker1.log").read_text()[-3000:]
                assert time.monotonic() < deadline, (
                    callbacks(),
                    (logs / "worker1.log").read_text()[-3000:],
                )
                time.sleep(0.1)
            assert stop(second, 30, logs / "worker1.log") == 0
        finally:
            if second.poll() is None:
                second.kill()
                second.wait(timeout=10)
    assert callbacks() == expected
    [(status, result)] = query(url, "SELECT status, result FROM tasks WHERE id = :t", t=task_id)
    result = json.loads(result) if isinstance(result, str) else result
    assert status == "succeeded" and result["video"]["frames_analysed"] == FRAMES, result
    assert [s for s, _, _ in segments()] == ["done"] * 3
    [(balance, ledger)] = query(
        url,
        "SELECT (SELECT credits FROM accounts WHERE id = :a), "
        "(SELECT sum(delta) FROM ledger WHERE account_id = :a)",
        a=account_id,
    )
    assert balance == ledger == CREDITS - FRAMES
