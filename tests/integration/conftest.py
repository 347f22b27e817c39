"""The whole service for real: uvicorn on a free 127.0.0.1 port, a SQLite file under
tmp_path, the real default detector (built once per session), a loopback image server
and loopback webhook receivers. Nothing leaves loopback.

    async def test_x(start_service, images):
        service = await start_service(credits=10, max_image_bytes=5000)
        answer = await service.submit([images.url("19--Couple/…jpg")], receiver.url("/cb"))

Waiting is always on a condition with a deadline (`eventually`), never a bare sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from facelens.adapters.detection.face_detector import FaceDetector
from facelens.adapters.detection.factory import build_detector
from facelens.adapters.store.migrate import upgrade
from facelens.application.ports import Detector
from facelens.core.domain import Account
from facelens.entrypoints.admin import create_account
from facelens.entrypoints.api.app import create_app
from facelens.entrypoints.bootstrap import Services, open_services
from facelens.entrypoints.config import Settings, load_settings
from tests.support.servers import HttpServer, RecordedRequest, Reply

DEV_IMAGES = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "eval" / "widerface-dev" / "WIDER_val"
) / "images"

FACE_IMAGES = (
    "19--Couple/19_Couple_Couple_19_1014.jpg",
    "19--Couple/19_Couple_Couple_19_106.jpg",
    "19--Couple/19_Couple_Couple_19_110.jpg",
    "19--Couple/19_Couple_Couple_19_125.jpg",
    "19--Couple/19_Couple_Couple_19_139.jpg",
)
"""Dev photos where the default model finds 2-3 clear faces."""

FAST_SCHEDULE = "0.4,0.8,1.2,1.6"


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]],
    within: float = 20.0,
    what: str = "condition",
    interval: float = 0.02,
) -> None:
    """Poll `predicate` (sync or async) until true; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_requests(
    server: HttpServer, count: int, within: float = 20.0
) -> list[RecordedRequest]:
    """At least `count` requests reached `server` (without blocking the event loop)."""
    await eventually(
        lambda: len(server.requests) >= count,
        within,
        f"{count} requests (got {len(server.requests)})",
    )
    return server.requests


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_envelope(body: Any, code: int) -> None:
    """Every answer is exactly {code, message, data} with the expected code."""
    assert isinstance(body, dict), body
    assert set(body) == {"code", "message", "data"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    if code != 100000:
        assert body["data"] is None or code == 100099, body


class Service:
    """One running instance of the app (API + worker + dispatcher) on loopback."""

    def __init__(self, settings: Settings, detector: Detector, api_key: str, account: Account):
        self.settings = settings
        self.detector = detector
        self.api_key = api_key
        self.account = account
        self.server: uvicorn.Server | None = None
        self.serving: asyncio.Task[None] | None = None
        self.client = httpx.AsyncClient()
        self.base_url = ""

    @property
    def database_url(self) -> str:
        return self.settings.resolved_database_url

    @property
    def services(self) -> Services:
        """The running app's services (store, tasks, accounts, worker, dispatcher)."""
        services: Services = self._app.state.services
        return services

    async def start(self) -> Service:
        detector = self.detector

        def factory(settings: Settings, with_worker: bool) -> Any:
            return open_services(settings, with_worker=with_worker, detector=detector)

        self._app = create_app(self.settings, with_worker=True, services_factory=factory)
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=0,
            lifespan="on",
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.serving = asyncio.create_task(self.server.serve(), name="uvicorn")
        server, serving = self.server, self.serving
        await eventually(lambda: server.started or serving.done(), 30, "the service to start", 0.01)
        if not server.started:
            raise RuntimeError("the service did not start") from serving.exception()
        port = server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=30.0)
        return self

    async def stop(self) -> None:
        await self.client.aclose()
        if self.server is not None and self.serving is not None:
            self.server.should_exit = True
            await asyncio.wait_for(self.serving, 60)
        self.server = None
        self.serving = None

    async def get(self, path: str, key: str | None = None) -> httpx.Response:
        return await self.client.get(path, headers=bearer(key or self.api_key))

    async def submit(
        self,
        urls: list[str],
        callback_url: str,
        callback_params: list[dict[str, Any] | None] | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        params = callback_params or [None] * len(urls)
        task_list = []
        for url, extra in zip(urls, params, strict=True):
            item: dict[str, Any] = {"additional_params": {"target_image_url": url}}
            if extra is not None:
                item["callback_params"] = extra
            task_list.append(item)
        response = await self.client.post(
            "/api/aigc/task/submit",
            headers=bearer(key or self.api_key),
            json={"aigc_type": "face_detect", "callback_url": callback_url, "task_list": task_list},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def task(self, task_id: int | str, key: str | None = None) -> dict[str, Any]:
        response = await self.get(f"/api/aigc/task/{task_id}", key)
        body = response.json()
        assert_envelope(body, 100000)
        data: dict[str, Any] = body["data"]
        return data

    async def account_info(self, key: str | None = None) -> dict[str, Any]:
        body = (await self.get("/api/account", key)).json()
        assert_envelope(body, 100000)
        data: dict[str, Any] = body["data"]
        return data

    async def tasks_settled(self, task_ids: list[int]) -> bool:
        """Every task finished and every delivery of it delivered or failed."""
        for task_id in task_ids:
            data = await self.task(task_id)
            if data["status"] not in ("succeeded", "failed"):
                return False
            deliveries = data["deliveries"]
            if len(deliveries) != 2 or any(
                d["status"] not in ("delivered", "failed") for d in deliveries
            ):
                return False
        return True


StartService = Callable[..., Awaitable[Service]]


def service_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "allow_private_urls": True,
        "poll_interval": 0.05,
        "retry_schedule": FAST_SCHEDULE,
        "callback_timeout": 3.0,
        "fetch_total_timeout": 10.0,
        "lease_seconds": 30.0,
        # Tests poll the query API; per-key throttling is tested elsewhere.
        "rate_limit_rps": 0,
        "rate_limit_tasks_per_minute": 0,
        "auth_failures_per_minute": 0,
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture(scope="session")
def dev_images() -> Path:
    if not DEV_IMAGES.is_dir():
        pytest.skip(f"WIDER FACE dev subset not found at {DEV_IMAGES.resolve()}")
    return DEV_IMAGES.resolve()


@pytest.fixture(scope="session")
def detector() -> FaceDetector:
    return build_detector("centerface", threads=2)


@pytest.fixture
async def start_service(tmp_path: Path, detector: FaceDetector) -> AsyncIterator[StartService]:
    """`await start_service(credits=N, **settings)`: a migrated database with one
    account, and the service running on it. Every service is stopped at teardown."""
    started: list[Service] = []

    async def start(credits: int = 100, name: str = "alice", **overrides: object) -> Service:
        settings = service_settings(tmp_path / f"svc{len(started)}", **overrides)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await upgrade(settings.resolved_database_url)
        created = await create_account(settings, name, credits)
        service = Service(settings, detector, created.api_key, created.account)
        started.append(service)
        return await service.start()

    yield start
    for service in started:
        await service.stop()


class ImageHost:
    """Serves the dev photos under /dev/<category>/<file>, plus routes tests add."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server = HttpServer(default=self._serve)

    def _serve(self, request: RecordedRequest) -> Reply:
        relative = request.route.removeprefix("/dev/")
        path = (self.root / relative).resolve()
        if not request.route.startswith("/dev/") or not path.is_relative_to(self.root):
            return Reply(404, {"Content-Type": "text/plain"}, b"not found")
        if not path.is_file():
            return Reply(404, {"Content-Type": "text/plain"}, b"not found")
        return Reply(200, {"Content-Type": "image/jpeg"}, path.read_bytes())

    def url(self, relative: str) -> str:
        return self.server.url(f"/dev/{relative}")

    def add(self, path: str, reply: Reply) -> str:
        self.server.route(path, reply)
        return self.server.url(path)


@pytest.fixture
def images(dev_images: Path) -> Iterator[ImageHost]:
    host = ImageHost(dev_images)
    with host.server:
        yield host


def receiver(policy: Callable[[RecordedRequest], int] = lambda request: 200) -> HttpServer:
    """A webhook receiver answering `policy(request)` as the HTTP status (start it with
    `with`)."""

    def answer(request: RecordedRequest) -> Reply:
        return Reply(policy(request), {"Content-Type": "text/plain"}, b"ok")

    return HttpServer(default=answer)
