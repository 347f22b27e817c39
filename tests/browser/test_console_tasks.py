"""The console's Tasks and Account pages in chromium: tasks submitted through the API,
their callbacks, Redeliver, hostile callback_params, keys and the webhook secret."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import COUPLE, FACE_IMAGES, Console, ImageHost
from tests.browser.test_console import assert_tab_reaches_every_control
from tests.support.clips import View, make_clip
from tests.support.servers import HttpServer

pytestmark = pytest.mark.slow

HOSTILE = "<img src=x onerror=\"document.title='pwned';window.__xss=1\">"


def test_a_task_appears_under_tasks_with_its_callbacks_and_redeliver_resends(
    console: Console, images: ImageHost, receiver: HttpServer
) -> None:
    facelens = console.facelens
    others = [
        facelens.submit(images.url(FACE_IMAGES[0]), receiver.url("/cb"), {"order": 15}),
        facelens.submit(images.url("19--Couple/missing.jpg"), receiver.url("/cb"), {"order": 16}),
    ]
    task_id = facelens.submit(images.url(COUPLE), receiver.url("/cb"), {"order": 17})
    for other in others:
        facelens.settled(other)
    task = facelens.settled(task_id)
    complete = [r for r in receiver.requests if r.headers["webhook-id"] == f"msg_{task_id}_2"]
    assert len(complete) == 1

    console.sign_in()
    page = console.page
    page.get_by_role("link", name="Tasks", exact=True).click()
    row = page.locator(f"tr[data-task='{task_id}']")
    row.wait_for()
    assert "succeeded" in row.inner_text() and '{"order":17}' in row.inner_text()
    console.screenshot("console-tasks.png")
    assert_tab_reaches_every_control(console)

    row.get_by_role("link", name=task_id).click()
    page.get_by_role("heading", name=f"Task {task_id}").wait_for()
    for process_status in (1, 2):
        timeline = page.locator(f"[data-delivery='{process_status}']")
        timeline.wait_for()
        assert "delivered" in timeline.inner_text() and "HTTP 200" in timeline.inner_text()
    page.locator("canvas").wait_for()  # the result drawn on the image (loopback http URL)
    assert page.locator("[data-face]").count() == len(task["result_list"])

    before = len(receiver.requests)
    page.get_by_role("button", name="Redeliver").click()
    page.get_by_text(f"webhook-id msg_{task_id}_2").wait_for()
    again = receiver.wait_for_requests(before + 1, timeout=20)[before]
    assert again.headers["webhook-id"] == f"msg_{task_id}_2"
    assert again.body == complete[0].body
    # The detail refreshes: the redelivery and its attempt join the timeline.
    timeline = page.locator("[data-delivery='2']")
    page.get_by_text("redelivery requested").wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll(\"[data-delivery='2'] li.good\").length === 2"
    )
    assert "delivered" in timeline.inner_text()
    console.screenshot("console-task.png")
    assert_tab_reaches_every_control(console)


def test_hostile_callback_params_are_shown_as_text(
    console: Console, images: ImageHost, receiver: HttpServer
) -> None:
    facelens = console.facelens
    params = {"note": HOSTILE, "<script>window.__xss=2</script>": "<b>bold</b>"}
    task_id = facelens.submit(images.url(COUPLE), receiver.url("/cb"), params)
    facelens.settled(task_id)

    console.sign_in()
    page = console.page
    console.open("#/tasks")
    row = page.locator(f"tr[data-task='{task_id}']")
    row.wait_for()
    assert "<img src=x" in row.inner_text()
    row.get_by_role("link", name=task_id).click()
    context = page.locator("pre.context")
    context.wait_for()
    assert HOSTILE.replace('"', '\\"') in context.inner_text()
    assert "<script>window.__xss=2</script>" in context.inner_text()
    assert page.locator("img[src='x'], script:not([src]), b").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.title() == "facelens console"


def test_account_usage_secret_and_keys(console: Console) -> None:
    facelens = console.facelens
    secret = facelens.ok("GET", "/api/account/webhook-secret")["webhook_secret"]
    console.sign_in()
    page = console.page
    page.get_by_role("link", name="Account").click()
    page.locator(".balance").wait_for()
    page.locator("svg.chart").wait_for()
    page.locator("table.keys").wait_for()
    console.screenshot("console-account.png")
    assert page.get_by_text(secret).count() == 0  # revealed on request only
    page.get_by_role("button", name="Reveal secret").click()
    page.get_by_text(secret).wait_for()

    keys = page.locator("table.keys tbody tr")
    keys.first.wait_for()
    count = keys.count()
    page.get_by_role("button", name="Create key").click()
    shown = page.locator("[role=status] code.secret")
    shown.wait_for()
    new_key = shown.inner_text()
    assert (
        facelens.api("GET", "/api/account", headers={"Authorization": f"Bearer {new_key}"})["code"]
        == 100000
    )
    page.wait_for_function(
        f"() => document.querySelectorAll('table.keys tbody tr').length === {count + 1}"
    )
    assert_tab_reaches_every_control(console)

    # Revoke the new key (two clicks: the first asks for confirmation).
    revoke = page.locator(f"button[data-prefix='{new_key[:11]}']")
    revoke.click()
    revoke.click()
    page.wait_for_function(
        f"() => !document.querySelector(\"button[data-prefix='{new_key[:11]}']\")"
    )
    assert (
        facelens.api("GET", "/api/account", headers={"Authorization": f"Bearer {new_key}"})["code"]
        == 100030
    )


def test_a_video_url_becomes_a_task_with_its_tracks_on_a_timeline(
    console: Console, images: ImageHost, receiver: HttpServer, tmp_path: Path
) -> None:
    photo = images.root / COUPLE
    with Image.open(photo) as opened:
        width, height = opened.size
    views = [View(width / 2, height / 2, width)] * 50  # 2 s at 25 fps, the faces still
    clip = make_clip(
        photo, np.zeros((0, 4)), tmp_path / "still.mp4", fps=Fraction(25), seconds=2.0, views=views
    )
    url = images.add("/clips/still.mp4", clip.path.read_bytes(), "video/mp4")

    console.sign_in()
    page = console.page
    page.get_by_label("Video URL").fill(url)
    page.get_by_label("Callback URL").fill(receiver.url("/video-cb"))
    page.get_by_label("Frame interval (ms)").fill("500")
    page.get_by_label("Max frames (one credit each)").fill("4")
    page.get_by_role("button", name="Submit video task").click()
    page.get_by_role("link", name="follow it").click()
    heading = page.get_by_role("heading", name="Task ")
    heading.wait_for()
    task_id = heading.inner_text().removeprefix("Task ").strip()
    task = console.facelens.settled(task_id)
    assert task["video"]["frames_analysed"] == 4 and len(task["tracks"]) >= 2

    page.locator("svg.chart.tracks").wait_for()
    assert page.locator("table.tracks tbody tr").count() == len(task["tracks"])
    assert page.locator("svg.chart.tracks circle").count() == len(task["result_list"])
    console.screenshot("console-video.png")
