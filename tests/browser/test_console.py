"""The console's sign-in and Try it pages in chromium against a real facelens server."""

from __future__ import annotations

import json

import pytest

from tests.browser.conftest import COUPLE, Console, ImageHost

pytestmark = pytest.mark.slow

CONTROLS = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])"
"""Everything a user can operate (or scroll, for the JSON) and must reach by keyboard."""


def test_served_with_a_strict_content_security_policy(console: Console) -> None:
    response = console.facelens.client.get("/")
    policy = response.headers["content-security-policy"]
    for directive in (
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        console.facelens.client.get("/console/app.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert console.facelens.client.get("/console/..%2fconsole.py").status_code == 404


def test_wrong_key_shows_the_refusal_and_the_right_one_signs_in(console: Console) -> None:
    refusal = console.facelens.client.get(
        "/api/account", headers={"Authorization": "Bearer fl_not_a_key"}
    ).json()
    assert refusal["code"] == 100030
    console.open()
    page = console.page
    key_box = page.get_by_label("API key", exact=True)
    key_box.fill("fl_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.text_content() == refusal["message"]
    assert page.evaluate("sessionStorage.length") == 0
    console.screenshot("console-sign-in.png")

    key_box.fill(console.facelens.api_key)
    key_box.press("Enter")  # Enter signs in too
    page.get_by_role("heading", name="Try it").wait_for()
    assert page.evaluate("Object.values(sessionStorage)") == [console.facelens.api_key]
    assert console.facelens.api_key not in page.url

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key", exact=True).wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    assert not page.get_by_role("link", name="Tasks", exact=True).is_visible()  # nav gone


def test_a_dev_photo_gives_as_many_faces_as_the_api(
    console: Console, dev_images: object, images: ImageHost
) -> None:
    photo = images.root / COUPLE
    options = {"landmarks": "68", "attributes": ["pose"]}
    answer = console.facelens.ok(
        "POST",
        "/api/face/detect",
        files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
        data={"options": json.dumps(options)},
    )
    expected = len(answer["result_list"])
    assert expected >= 2

    console.sign_in()
    page = console.page
    page.set_input_files("#image-file", str(photo))
    page.get_by_label("Landmarks").select_option("68")
    page.get_by_role("button", name="Detect faces").click()
    page.locator("canvas").wait_for()
    faces = page.locator("[data-face]")
    assert faces.count() == expected
    credits_before = console.facelens.ok("GET", "/api/account")["credits"]

    # Selecting a face by keyboard highlights it and shows its score and pose.
    faces.nth(1).focus()
    page.keyboard.press("Enter")
    assert faces.nth(1).get_attribute("aria-pressed") == "true"
    assert faces.nth(0).get_attribute("aria-pressed") == "false"
    detail = page.locator(".face-detail").inner_text()
    assert f"{answer['result_list'][1]['score']:.3f}" in detail
    assert "yaw" in detail and "68 points" in detail
    raw = json.loads(page.locator("pre.json").inner_text())
    assert len(raw["result_list"]) == expected
    page.get_by_text(f"{credits_before} credits").wait_for()  # the balance after the call
    console.screenshot("console-try.png")

    # The same photo by URL (a loopback image host): drawn and listed alike.
    page.get_by_label("Image URL").fill(images.url(COUPLE))
    page.get_by_role("button", name="Detect faces").click()
    page.get_by_text(f"{credits_before - 1} credits").wait_for()
    page.locator("canvas").wait_for()
    assert page.locator("[data-face]").count() == expected


def test_every_control_is_reachable_by_keyboard(console: Console, images: ImageHost) -> None:
    console.open()
    assert_tab_reaches_every_control(console)  # the sign-in page
    console.sign_in()
    page = console.page
    page.get_by_label("Image URL").fill(images.url(COUPLE))
    page.get_by_role("button", name="Detect faces").click()
    page.locator("[data-face]").first.wait_for()
    assert_tab_reaches_every_control(console)  # Try it with a result (faces, Copy)
    page.get_by_role("link", name="Account").click()
    page.locator(".balance").wait_for()
    assert_tab_reaches_every_control(console)


def assert_tab_reaches_every_control(console: Console) -> None:
    """Tab from the top of the page through it; every visible, enabled control must
    receive the focus at least once."""
    page = console.page
    total = page.evaluate(
        """(selector) => {
            const all = [...document.querySelectorAll(selector)].filter((node) =>
                !node.disabled && node.getClientRects().length > 0);
            all.forEach((node, index) => { node.dataset.kb = String(index); });
            return all.length;
        }""",
        CONTROLS,
    )
    assert total > 0
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached: set[str] = set()
    for _ in range(total * 2 + 5):
        page.keyboard.press("Tab")
        mark = page.evaluate("document.activeElement && document.activeElement.dataset.kb")
        if mark is not None:
            reached.add(mark)
        if len(reached) == total:
            break
    missing = page.evaluate(
        """(reached) => [...document.querySelectorAll('[data-kb]')]
            .filter((node) => !reached.includes(node.dataset.kb))
            .map((node) => node.outerHTML.slice(0, 120))""",
        sorted(reached),
    )
    assert missing == []
