"""`facelens bench` at smoke size: 3 real photos through a real `serve` process.

Speed is not asserted (the report is for people, on a quiet machine); what is checked
is that every phase ran against the real service and reported consistent numbers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

DEV_PHOTOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "eval" / "widerface-dev"


@pytest.mark.slow
def test_bench_smoke_reports_every_phase(tmp_path: Path) -> None:
    photos = DEV_PHOTOS / "WIDER_val" / "images"
    if not photos.is_dir():
        pytest.skip(f"dev photos not found at {photos.resolve()}")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FACELENS_DETECT_THREADS": "1"}
    args = ["--images", str(photos), "-n", "3", "--idle", "2", "--failing", "20", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "facelens", "bench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)

    assert report["images"] == 3 and report["mode"] == "balanced"
    service = report["service"]
    assert service["failed"] == 0  # every photo analysed by the real model
    assert service["images_per_s"] > 0
    assert 0 < service["p50_ms"] <= service["p95_ms"]
    assert service["cpu_ms_per_task"] > 0  # read from the spawned serve process
    assert 0 < service["event_loop_cpu_ms_per_task"] <= service["cpu_ms_per_task"]
    assert math.isfinite(service["cpu_ms_per_task_outside_inference"])

    bare = report["bare"]
    assert bare["images"] == 3 and bare["images_per_s"] > 0 and bare["cpu_ms_per_image"] > 0
    assert report["ratio"] == pytest.approx(service["images_per_s"] / bare["images_per_s"])

    idle = report["idle"]
    assert idle["samples"] == 2
    assert 0 < idle["p50_ms"] <= idle["p95_ms"]
    assert idle["detect_p50_ms"] > 0

    burst = report["failing_burst"]
    assert burst["tasks"] == 20 and burst["all_failed"] is True
    assert burst["tasks_per_s"] > 0
    assert "load average" in report["load_before"] and "load average" in report["load_after"]
