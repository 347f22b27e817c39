"""The console's files, checked without a browser: every module import resolves to a
served file, and no file uses an HTML sink, eval or inline script/style (the CSP would
block them in the browser; this names the line before anyone opens one)."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from facelens.entrypoints.api import console
from facelens.entrypoints.api.envelope import install_error_handlers

SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
    r"setAttribute\(\s*['\"](?:style|on\w+)|\.style\.|javascript:"
)
IMPORT = re.compile(r"from\s+'\./([a-z0-9_-]+\.js)'")


def client() -> httpx.AsyncClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(console.router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console")


async def test_every_module_import_resolves_and_is_served() -> None:
    http = client()
    files = sorted(path.name for path in console.STATIC_DIR.iterdir() if path.is_file())
    assert "index.html" in files and "app.js" in files
    for name in files:
        if name.endswith(".js"):
            for imported in IMPORT.findall((console.STATIC_DIR / name).read_text()):
                assert imported in files, f"{name} imports missing {imported}"
        if name != "index.html":
            answer = await http.get(f"/console/{name}")
            assert answer.status_code == 200, name
            assert answer.headers["content-security-policy"] == console.CONTENT_SECURITY_POLICY
    page = await http.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_no_html_sinks_eval_or_inline_code() -> None:
    for path in console.STATIC_DIR.iterdir():
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            assert not SINKS.search(line), f"{path.name}:{number}: {line.strip()}"
    html = (console.STATIC_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert not re.search(r"<style|\sstyle=|\son\w+=", html), "inline style or handler"


async def test_only_listed_asset_names_are_served() -> None:
    http = client()
    for name in ("..%2fconsole.py", "console.py", "index.html", ".hidden.js", "a.b.js", "x.js"):
        assert (await http.get(f"/console/{name}")).status_code == 404, name
