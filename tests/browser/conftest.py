"""The console in a real browser: Debian's chromium driven by Playwright, against a real
`facelens serve` process on loopback (SQLite file, the default model, worker and
dispatcher), a loopback image host serving the dev photos and a loopback webhook
receiver. Nothing leaves loopback; no browser is ever downloaded.

One server for this package (stopped as soon as its tests are done, so it does not poll
its database while the rest of the suite runs) and one browser per module: the
expensive parts. Each test gets a fresh browser context (its own sessionStorage) whose
page errors and console errors fail it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.support.servers import HttpServer, RecordedRequest, Reply, free_port

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
DEV_IMAGES = ROOT / ".." / "shared" / "eval" / "widerface-dev" / "WIDER_val" / "images"
COUPLE = "19--Couple/19_Couple_Couple_19_106.jpg"
"""A dev photo where the default model finds two clear faces."""
FACE_IMAGES = ("19--Couple/19_Couple_Couple_19_125.jpg", "19--Couple/19_Couple_Couple_19_139.jpg")

START_WITHIN_S = 90.0


def wait_until(predicate: Any, within: float, what: str, interval: float = 0.05) -> Any:
    """Poll `predicate()` until it returns something truthy; fail after `within` s."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Facelens:
    """A running `facelens serve` and the key it printed for its default account."""

    base_url: str
    api_key: str
    log: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=60,
        )

    def api(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The envelope of one API call with the session's key."""
        response = self.client.request(method, path, **kwargs)
        body: dict[str, Any] = response.json()
        return body

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        """`data` of a call that must succeed (code 100000)."""
        body = self.api(method, path, **kwargs)
        assert body["code"] == 100000, body
        return body["data"]

    def submit(self, image_url: str, callback_url: str, callback_params: Any = None) -> str:
        """Queues one task; its id."""
        item: dict[str, Any] = {"additional_params": {"target_image_url": image_url}}
        if callback_params is not None:
            item["callback_params"] = callback_params
        data = self.ok(
            "POST",
            "/api/aigc/task/submit",
            json={"aigc_type": "face_detect", "callback_url": callback_url, "task_list": [item]},
        )
        return str(data["task_id_list"][0])

    def settled(self, task_id: str) -> dict[str, Any]:
        """Waits until the task finished and both its callbacks were delivered or gave up."""

        def done() -> dict[str, Any] | None:
            task: dict[str, Any] = self.ok("GET", f"/api/aigc/task/{task_id}")
            deliveries = task["deliveries"]
            finished = task["status"] in ("succeeded", "failed") and len(deliveries) == 2
            return task if finished and all(d["status"] != "pending" for d in deliveries) else None

        task: dict[str, Any] = wait_until(done, 60, f"task {task_id} to settle", 0.1)
        return task


class ImageHost:
    """Serves the dev photos under /dev/<category>/<file>."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server = HttpServer(default=self._serve)

    def _serve(self, request: RecordedRequest) -> Reply:
        path = (self.root / request.route.removeprefix("/dev/")).resolve()
        if request.route.startswith("/dev/") and path.is_relative_to(self.root) and path.is_file():
            return Reply(200, {"Content-Type": "image/jpeg"}, path.read_bytes())
        return Reply(404, {"Content-Type": "text/plain"}, b"not found")

    def url(self, relative: str) -> str:
        return self.server.url(f"/dev/{relative}")

    def add(self, path: str, body: bytes, content_type: str) -> str:
        """Serves `body` at `path` too; its URL."""
        self.server.route(path, Reply(200, {"Content-Type": content_type}, body))
        return self.server.url(path)


@pytest.fixture(scope="package")
def dev_images() -> Path:
    if not DEV_IMAGES.is_dir():
        pytest.skip(f"WIDER FACE dev subset not found at {DEV_IMAGES.resolve()}")
    return DEV_IMAGES.resolve()


@pytest.fixture(scope="package")
def images(dev_images: Path) -> Iterator[ImageHost]:
    host = ImageHost(dev_images)
    with host.server:
        yield host


@pytest.fixture(scope="package")
def receiver() -> Iterator[HttpServer]:
    """A webhook receiver that confirms every callback (HTTP 200)."""
    with HttpServer(default=Reply(200, {"Content-Type": "text/plain"}, b"ok")) as server:
        yield server


def _read_key(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.strip())


@pytest.fixture(scope="package")
def facelens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Facelens]:
    """`facelens serve` on an empty SQLite database: it migrates, creates the default
    account and prints its key once on stdout, as `make serve` does for a newcomer."""
    home = tmp_path_factory.mktemp("console")
    port = free_port()
    env = {
        **os.environ,
        "FACELENS_DATA_DIR": str(home / "data"),
        "FACELENS_HOST": "127.0.0.1",
        "FACELENS_PORT": str(port),
        "FACELENS_ALLOW_PRIVATE_URLS": "true",
        "FACELENS_POLL_INTERVAL": "0.05",
        "FACELENS_RETRY_SCHEDULE": "0.4,0.8,1.2,1.6",
        "FACELENS_CALLBACK_TIMEOUT": "3",
        "FACELENS_RATE_LIMIT_RPS": "0",
        "FACELENS_RATE_LIMIT_TASKS_PER_MINUTE": "0",
        "FACELENS_AUTH_FAILURES_PER_MINUTE": "0",
        "FACELENS_DEFAULT_ACCOUNT_CREDITS": "1000",
        "FACELENS_LOG_LEVEL": "warning",
    }
    log = home / "serve.log"
    command = [sys.executable, "-c", "from facelens.entrypoints.cli.main import main; main()"]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "serve"], env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    lines: list[str] = []
    threading.Thread(target=_read_key, args=(process, lines), daemon=True).start()
    base_url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"facelens serve exited:\n{log.read_text()[-4000:]}")
        try:
            return lines != [] and httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, START_WITHIN_S, "facelens serve to be ready", 0.2)
        yield Facelens(base_url, lines[0], log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One chromium per test module. Not per session: while Playwright's sync API is
    started, its event loop counts as running in this thread, and the asyncio tests of
    the other directories could not start theirs."""
    if not CHROMIUM.is_file():
        pytest.skip("chromium is not installed at /usr/bin/chromium (apt install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@dataclass
class Console:
    """A fresh browser tab on the console, with every JavaScript error it logged."""

    page: Page
    facelens: Facelens
    errors: list[str]

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.facelens.base_url}/{route}")

    def sign_in(self, key: str | None = None) -> None:
        self.open()
        box = self.page.get_by_label("API key", exact=True)
        box.fill(key or self.facelens.api_key)
        box.press("Enter")
        self.page.get_by_role("link", name="Try it").wait_for()

    def screenshot(self, name: str) -> None:
        DOCS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(DOCS / name), full_page=True)


@pytest.fixture
def console(browser: Browser, facelens: Facelens) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            errors.append(f"console {message.type}: {message.text} @ {message.location}")

    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", on_console)
    try:
        yield Console(page, facelens, errors)
        assert errors == [], "JavaScript errors were logged"
    finally:
        context.close()
