"""The service under test: a real `facelens serve` process, or one already running.

`spawned_service` starts what an operator would: `facelens db upgrade`, an account
(`facelens accounts create`, whose key it reads), then `facelens serve` (API, worker
and dispatcher in one process) on a free loopback port, on SQLite in a temporary data
dir unless a database URL is given. It inherits the caller's `FACELENS_*` tuning
settings, minus any that point at real data (database, data dir, bind address), plus
what a benchmark needs: loopback image and callback URLs allowed, no rate limits, the
requested mode. Its log goes to a file in the data dir, as a deployment's would.

The client side is the standard library (urllib in a thread), so the benchmark adds
no HTTP dependency and its requests cost the service exactly what a client's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NOT_INHERITED = ("FACELENS_DATABASE_URL", "FACELENS_DATA_DIR", "FACELENS_HOST", "FACELENS_PORT")
START_DEADLINE_S = 120.0


@dataclass(frozen=True, slots=True)
class Target:
    """Where the benchmark submits: base URL, API key, and the process id when the
    benchmark started the service itself (its CPU time is then measured)."""

    url: str
    key: str
    pid: int | None = None
    log_path: Path | None = None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def service_env(data_dir: Path, mode: str, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env.update(
        {
            "FACELENS_DATA_DIR": str(data_dir),
            "FACELENS_ALLOW_PRIVATE_URLS": "true",
            "FACELENS_DETECT_MODE": mode,
            "FACELENS_RATE_LIMIT_RPS": "0",
            "FACELENS_RATE_LIMIT_TASKS_PER_MINUTE": "0",
        }
    )
    if database_url:
        env["FACELENS_DATABASE_URL"] = database_url
    return env


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "facelens", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"facelens {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


@contextlib.asynccontextmanager
async def spawned_service(
    mode: str, credits: int, database_url: str | None = None
) -> AsyncIterator[Target]:
    """A `facelens serve` process, ready (its /readyz answered 200), stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="facelens-bench-") as tmp:
        data_dir = Path(tmp)
        env = service_env(data_dir, mode, database_url)
        await asyncio.to_thread(_cli, env, "db", "upgrade")
        name = f"bench-{uuid.uuid4().hex[:8]}"
        out = await asyncio.to_thread(
            _cli, env, "accounts", "create", name, "--credits", str(credits)
        )
        key = out.strip().splitlines()[-1].strip()
        port = free_port()
        log_path = data_dir / "serve.log"
        proc = await asyncio.to_thread(_start_serve, env, port, log_path)
        target = Target(f"http://127.0.0.1:{port}", key, proc.pid, log_path)
        try:
            await wait_ready(target, proc)
            yield target
        finally:
            await asyncio.to_thread(_stop, proc)


def _start_serve(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "facelens", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful stop), then SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def wait_ready(target: Target, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = target.log_path.read_text(errors="replace")[-2000:] if target.log_path else ""
            raise RuntimeError(f"facelens serve exited with {proc.returncode}:\n{tail}")
        status, _ = await asyncio.to_thread(_request, "GET", f"{target.url}/readyz", None, None)
        if status == 200:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{target.url}/readyz not ready within {START_DEADLINE_S:.0f} s")


def _request(
    method: str, url: str, key: str | None, body: dict[str, Any] | None
) -> tuple[int, Any]:
    """One request; (HTTP status, decoded JSON or None). 0 when nothing answered."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read()
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), int(exc.code)
    except OSError:
        return 0, None
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, None


async def submit(
    target: Target, callback_url: str, image_urls: Sequence[str], first: int = 0
) -> list[int]:
    """One submission (`task_list` of len(image_urls)); the task ids, in order.
    `callback_params` carries each task's index, as a client's would."""
    body = {
        "aigc_type": "face_detect",
        "callback_url": callback_url,
        "task_list": [
            {"additional_params": {"target_image_url": url}, "callback_params": {"n": first + i}}
            for i, url in enumerate(image_urls)
        ],
    }
    status, answer = await asyncio.to_thread(
        _request, "POST", f"{target.url}/api/aigc/task/submit", target.key, body
    )
    if status != 200 or not isinstance(answer, dict) or answer.get("code") != 100000:
        raise RuntimeError(f"submit refused: HTTP {status} {answer}")
    return [int(task_id) for task_id in answer["data"]["task_id_list"]]


def cpu_seconds(pid: int, main_thread: bool = False) -> float:
    """User + system CPU of one process (all its threads) so far, from /proc; of its
    main thread only (the event loop: API, worker, dispatcher, database client) with
    `main_thread`."""
    with open(f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
