"""`facelens worker --metrics-port` and `facelens workers`, as real processes.

One SQLite file, one worker process with JSON logs and its /metrics on a port the OS
picks (its log says which). The scrape passes `promtool check metrics`; `facelens
workers` lists the process from its heartbeat; after SIGTERM the row is gone and
`facelens workers` says no worker is live (exit 1)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from facelens.adapters.store.migrate import upgrade
from tests.ops.promtool import promtool
from tests.support.fleet import fleet_env

pytestmark = pytest.mark.slow

START_DEADLINE_S = 90.0
METRICS_LINE = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")


def _metrics_port(log: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")
        found = METRICS_LINE.search(log.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        time.sleep(0.1)
    raise AssertionError(f"no metrics port logged:\n{log.read_text(errors='replace')}")


def _facelens(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facelens", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_worker_process_serves_metrics_and_heartbeats(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'facelens.db'}"
    asyncio.run(upgrade(url))
    env = fleet_env(url, tmp_path, log_format="json", metrics_token="tok")
    env["ORT_DISABLE_TELEMETRY"] = "1"
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "facelens", "worker", "--metrics-port", "0"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        port = _metrics_port(log, process)
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(metrics_url, timeout=30).status_code == 401
        scraped = httpx.get(metrics_url, headers={"Authorization": "Bearer tok"}, timeout=30)
        assert scraped.status_code == 200
        promtool("check", "metrics", stdin=scraped.content)
        assert 'facelens_build_info{role="worker"' in scraped.text
        assert "facelens_worker_slots 4.0" in scraped.text

        listed = _facelens(env, "workers")
        assert listed.returncode == 0, listed.stderr
        assert "worker@" in listed.stdout and f":{process.pid}" in listed.stdout
        assert "tasks done" in listed.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(entry["message"] == "worker stopped" for entry in lines)
    gone = _facelens(env, "workers")
    assert gone.returncode == 1 and "no worker seen" in gone.stderr
