"""A 3-minute video on PostgreSQL with 1 and with 3 worker processes: does it scale?

    .venv/bin/python -P bench/video_scale.py [--workers 1,3] [--seconds 180]
        [--size 1280x720] [--fps 25] [--interval-ms 1000] [--segment-seconds 60]
        [--threads 1] [--clip PATH] [--repeat 1]

Real processes, as `facelens serve` / `facelens worker` nodes: for each worker count
a fresh PostgreSQL database (from template0, migrated, dropped afterwards), one API
node (`serve --no-worker`), N `worker` processes with `FACELENS_DETECT_THREADS`
(default 1, so one worker uses one core), a loopback server for the clip and one for
the callbacks. One video task (`target_video_url`, `frame_interval_ms`) is submitted;
the time is submit to complete callback received. The video is split into segments of
`FACELENS_VIDEO_SEGMENT_SECONDS` that any worker claims, so three workers can work on
one video at once.

Each run prints which worker process did which segment (`video_segments.worker_id`).
Reported: seconds per run, the ratio t(1 worker) / t(N workers), and the per-core
efficiency = ratio / min(N, cores) (this machine has 2 cores, so 3 workers can at
best double the speed). The clip (tests/support/clips.py: a pan and zoom over a dev
photo, H.264) is made once and kept at `--clip` when given. Prints `uptime`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))  # tests.support

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402
from tests.support.clips import make_clip  # noqa: E402
from tests.support.fleet import (  # noqa: E402
    Fleet,
    fleet_env,
    query,
    run_async,
    stop_all,
    submit,
    wait_healthy,
)
from tests.support.servers import HttpServer, Reply, free_port  # noqa: E402

from facelens.adapters.widerface import load_widerface  # noqa: E402

PG_URL = os.environ.get("FACELENS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
DEV_DIR = _ROOT / ".." / "shared" / "eval" / "widerface-dev"
PHOTO = "0--Parade/0_Parade_Parade_0_364"


async def _admin(statement: str) -> None:
    engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def one_run(
    clip: Path, workers: int, args: argparse.Namespace, logs: Path
) -> tuple[float, dict[str, object]]:
    """Seconds from submit to the complete callback, and that callback's `video`."""
    logs.mkdir(parents=True, exist_ok=True)
    name = f"facelens_vscale_{uuid.uuid4().hex[:10]}"
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    run_async(_admin(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    video = Reply(200, {"Content-Type": "video/mp4"}, clip.read_bytes())
    try:
        with HttpServer({"/clip.mp4": video}) as files, HttpServer(default=Reply(200)) as receiver:
            env = fleet_env(
                url,
                logs / "data",
                detect_threads=str(args.threads),
                video_segment_seconds=str(args.segment_seconds),
            )
            fleet = Fleet(url, env, [free_port()], files.url("/clip.mp4"), receiver, logs)
            try:
                fleet.cli("db", "upgrade")
                key = fleet.new_account(credits=100_000)
                fleet.apis = [fleet.spawn("api0", "serve", "--no-worker", port=fleet.api_ports[0])]
                fleet.workers = [fleet.spawn(f"worker{i}", "worker") for i in range(workers)]
                wait_healthy(fleet)
                time.sleep(2.0)  # workers load their models; not part of the video's time
                body = {
                    "aigc_type": "face_detect",
                    "callback_url": receiver.url("/done"),
                    "task_list": [
                        {
                            "additional_params": {
                                "target_video_url": files.url("/clip.mp4"),
                                "frame_interval_ms": args.interval_ms,
                                "max_frames": 3600,
                            },
                            "callback_params": {},
                        }
                    ],
                }
                started = time.monotonic()
                reply = submit(fleet.api_ports[0], key, body)
                assert reply["code"] == 100000, reply
                deadline = started + 3600
                while True:
                    done = [
                        r
                        for r in receiver.requests_to("/done")
                        if r.headers["webhook-id"].endswith("_2")
                    ]
                    if done:
                        seconds = time.monotonic() - started
                        callback = json.loads(done[0].body)
                        break
                    assert time.monotonic() < deadline, fleet.log_tails()
                    time.sleep(0.1)
                rows = query(url, "SELECT seq, worker_id FROM video_segments ORDER BY seq")
                callback["segments"] = {int(seq): str(worker) for seq, worker in rows}
            finally:
                stop_all(fleet.apis + fleet.workers)
    finally:
        run_async(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    assert callback.get("result_code") == 1, callback
    return seconds, {**callback["video"], "segments by worker": callback["segments"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,3")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--segment-seconds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clip", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dev-dir", type=Path, default=DEV_DIR)
    args = parser.parse_args(argv)
    counts = [int(v) for v in args.workers.split(",")]
    width, height = (int(v) for v in args.size.split("x"))
    print(f"before: {uptime()}")
    with tempfile.TemporaryDirectory(prefix="facelens-video-scale-") as tmp:
        clip = args.clip or Path(tmp) / "clip.mp4"
        if not clip.is_file():
            dataset = load_widerface(args.dev_dir.resolve())
            index = [image.key for image in dataset.images].index(PHOTO)
            made = time.perf_counter()
            make_clip(
                dataset.images[index].path,
                dataset.ground_truth[index].boxes,
                clip,
                size=(width, height),
                fps=args.fps,
                seconds=args.seconds,
            )
            print(f"clip made in {time.perf_counter() - made:.0f} s")
        print(
            f"clip {clip.stat().st_size / 1e6:.1f} MB; interval {args.interval_ms} ms, "
            f"segments of {args.segment_seconds} s, {args.threads} detect thread(s) per worker"
        )
        times: dict[int, list[float]] = {n: [] for n in counts}
        for _ in range(args.repeat):
            for n in counts:
                seconds, video = one_run(
                    clip, n, args, Path(tmp) / f"logs-{n}-{uuid.uuid4().hex[:6]}"
                )
                times[n].append(seconds)
                print(f"# {n} worker(s): {seconds:.1f} s, video {video}", flush=True)
    cores = os.cpu_count() or 1
    base = min(times[counts[0]])
    print("| workers | seconds (best) | runs | speed-up | per-core efficiency |")
    print("|---:|---:|---|---:|---:|")
    for n in counts:
        best = min(times[n])
        ratio = base / best
        print(
            f"| {n} | {best:.1f} | {', '.join(f'{t:.1f}' for t in times[n])} | {ratio:.2f} "
            f"| {ratio / min(n, cores) * min(counts[0], cores):.2f} |"
        )
    print(f"after: {uptime()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
