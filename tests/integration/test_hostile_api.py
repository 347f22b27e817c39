"""Hostile requests against the real app (ASGI, in process, SQLite file under tmp_path).

Bodies too large (declared or chunked), nested too deep, not UTF-8, not objects; keys
revoked, guessed or leaked into logs; clients too fast; one account reading another's
tasks. Every answer must be a `{code, message, data}` envelope and never a 5xx.
The rate limiters get a fake clock (`app.state.limits`), so nothing here sleeps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from facelens.adapters.store.migrate import upgrade
from facelens.core.domain import DecodedImage, DetectOptions, Face
from facelens.entrypoints.admin import create_account
from facelens.entrypoints.api.app import create_app
from facelens.entrypoints.api.ratelimit import ApiLimits
from facelens.entrypoints.bootstrap import Services, open_services
from facelens.entrypoints.config import Settings, load_settings

SUBMIT = "/api/aigc/task/submit"
DETECT = "/api/face/detect"
IMAGE_URL = "http://127.0.0.1:9/a.jpg"  # never fetched: no worker runs here
CALLBACK_URL = "http://127.0.0.1:9/cb"


class NoFaces:
    name = "no-faces"

    def detect(self, image: DecodedImage, options: DetectOptions) -> list[Face]:
        return []


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    app: FastAPI
    settings: Settings
    keys: list[str]
    clock: FakeClock
    stack: AsyncExitStack

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def client(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(
            app=self.app, raise_app_exceptions=False, client=(address, 40000)
        )
        return httpx.AsyncClient(transport=transport, base_url="http://facelens.test")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def submit_body(n: int = 1, callback_params: Any = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"additional_params": {"target_image_url": IMAGE_URL}}
    if callback_params is not None:
        item["callback_params"] = callback_params
    return {"aigc_type": "face_detect", "callback_url": CALLBACK_URL, "task_list": [item] * n} | (
        extra
    )


def envelope_of(response: httpx.Response, code: int) -> dict[str, Any]:
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"code", "message", "data"}, body
    assert body["code"] == code, body
    assert response.status_code < 500 or code == 100099, response.text
    return body


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(tmp_path: Path) -> AsyncIterator[ApiFactory]:
    async with AsyncExitStack() as stack:

        async def make(accounts: int = 2, credits: int = 1000, **overrides: Any) -> Api:
            data_dir = tmp_path / f"db{len(made)}"
            data_dir.mkdir()
            settings = load_settings(
                {},
                data_dir=data_dir,
                allow_private_urls=True,
                max_request_bytes=20_000,
                **overrides,
            )
            await upgrade(settings.resolved_database_url)
            keys = [
                (await create_account(settings, f"account-{i}", credits)).api_key
                for i in range(accounts)
            ]

            def factory(settings: Settings, with_worker: bool) -> Any:
                return open_services(settings, with_worker=with_worker, detector=NoFaces())

            app = create_app(settings, with_worker=False, services_factory=factory)
            await stack.enter_async_context(app.router.lifespan_context(app))
            clock = FakeClock()
            app.state.limits = ApiLimits.from_settings(settings, clock)
            api = Api(app, settings, keys, clock, stack)
            made.append(api)
            return api

        made: list[Api] = []
        yield make


# -- bodies ----------------------------------------------------------------------------


async def test_declared_oversized_body_is_refused_unread(make_api: ApiFactory) -> None:
    api = await make_api()
    async with api.client() as client:
        body = json.dumps(submit_body(callback_params={"pad": "x" * 30_000}))
        response = await client.post(
            SUBMIT,
            content=body,
            headers={**bearer(api.keys[0]), "content-type": "application/json"},
        )
    assert "larger than 20000 bytes" in envelope_of(response, 100010)["message"]


async def test_chunked_body_without_length_is_cut_at_the_limit(make_api: ApiFactory) -> None:
    api = await make_api()
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"aigc_type": "face_detect", "pad": "'
        while sent < 10_000_000:  # 10 MB unless the server stops reading
            sent += 4096
            yield b"x" * 4096

    async with api.client() as client:
        request = client.build_request(
            "POST", SUBMIT, content=endless(), headers=bearer(api.keys[0])
        )
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        response = await client.send(request)
    assert "larger than 20000 bytes" in envelope_of(response, 100010)["message"]
    assert sent < 20_000 + 2 * 4096  # stopped reading right after the limit


async def test_deep_nesting_is_invalid_not_a_server_error(make_api: ApiFactory) -> None:
    api = await make_api()
    headers = {**bearer(api.keys[0]), "content-type": "application/json"}
    deep = "[" * 9_000 + "]" * 9_000  # 18 KB, under the body limit; far past recursion
    body = json.dumps(submit_body(callback_params={"x": 1})).replace('{"x": 1}', f'{{"x":{deep}}}')
    async with api.client() as client:
        for path, content in [(SUBMIT, deep), (DETECT, deep), (SUBMIT, body)]:
            response = await client.post(path, content=content, headers=headers)
            assert envelope_of(response, 100010)["message"].endswith("nested too deeply")


async def test_callback_params_depth_and_size_limits(make_api: ApiFactory) -> None:
    api = await make_api()

    def nested(levels: int) -> dict[str, Any]:
        value: dict[str, Any] = {"leaf": 1}
        for _ in range(levels - 1):
            value = {"n": value}
        return value

    async with api.client() as client:
        ok = await client.post(
            SUBMIT, json=submit_body(callback_params=nested(32)), headers=bearer(api.keys[0])
        )
        envelope_of(ok, 100000)
        too_deep = await client.post(
            SUBMIT, json=submit_body(callback_params=nested(33)), headers=bearer(api.keys[0])
        )
        message = envelope_of(too_deep, 100010)["message"]
        assert "task_list[0].callback_params" in message and "nested" in message
        lists = await client.post(
            SUBMIT,
            json=submit_body(callback_params={"a": json.loads("[" * 40 + "]" * 40)}),
            headers=bearer(api.keys[0]),
        )
        envelope_of(lists, 100010)
        huge = await client.post(
            SUBMIT,
            json=submit_body(callback_params={"pad": "x" * 17_000}),
            headers=bearer(api.keys[0]),
        )
        assert "callback_params" in envelope_of(huge, 100010)["message"]


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe{\x00}\x00",  # UTF-16 with a BOM
        b'{"aigc_type": "face_detect\xff"}',  # Latin-1 byte inside a string
        b"[1, 2, 3]",
        b'"face_detect"',
        b"null",
        b"42",
        b"",
        b"{",
        b'{"aigc_type": NaN}',
    ],
)
async def test_non_utf8_and_non_object_bodies_are_invalid(
    make_api: ApiFactory, content: bytes
) -> None:
    api = await make_api(accounts=1)
    headers = {**bearer(api.keys[0]), "content-type": "application/json"}
    async with api.client() as client:
        for path in (SUBMIT, DETECT):
            response = await client.post(path, content=content, headers=headers)
            assert "error parsing" not in envelope_of(response, 100010)["message"]


@pytest.mark.parametrize(
    "body",
    [
        submit_body(callback_params={"name": "\ud800"}),  # JSON "\ud800": no UTF-8 form
        submit_body(callback_url=CALLBACK_URL + "\udfff"),
        submit_body(task_list=[{"additional_params": {"target_image_url": IMAGE_URL + "\ud800"}}]),
    ],
)
async def test_unpaired_surrogates_are_invalid_and_charge_nothing(
    make_api: ApiFactory, body: dict[str, Any]
) -> None:
    api = await make_api(accounts=1)
    headers = {**bearer(api.keys[0]), "content-type": "application/json"}
    async with api.client() as client:
        response = await client.post(SUBMIT, content=json.dumps(body), headers=headers)
        assert "surrogate" in envelope_of(response, 100010)["message"]
        account = await client.get("/api/account", headers=bearer(api.keys[0]))
    assert envelope_of(account, 100000)["data"]["credits"] == 1000


async def test_a_json_body_without_its_content_type_says_so(make_api: ApiFactory) -> None:
    api = await make_api(accounts=1)
    content = json.dumps(submit_body())
    async with api.client() as client:
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            headers = {**bearer(api.keys[0]), "content-type": content_type}
            response = await client.post(SUBMIT, content=content, headers=headers)
            assert "Content-Type: application/json" in envelope_of(response, 100010)["message"]
        headers = {**bearer(api.keys[0]), "content-type": "application/json"}
        response = await client.post(SUBMIT, content=b'"face_detect"', headers=headers)
        assert "Content-Type" not in envelope_of(response, 100010)["message"]


# -- keys ------------------------------------------------------------------------------


async def test_revoked_key_is_refused_at_once(make_api: ApiFactory) -> None:
    api = await make_api(accounts=1)
    async with api.client() as client:
        envelope_of(await client.get("/api/account", headers=bearer(api.keys[0])), 100000)
        assert await api.services.accounts.revoke_key(api.keys[0])
        for path in ("/api/account", "/api/aigc/task/1"):
            envelope_of(await client.get(path, headers=bearer(api.keys[0])), 100030)
        response = await client.post(SUBMIT, json=submit_body(), headers=bearer(api.keys[0]))
        envelope_of(response, 100030)


async def test_keys_never_reach_logs_errors_or_the_task_api(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = await make_api(accounts=2)
    good, other = api.keys
    guessed = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    bodies: list[str] = []
    async with api.client() as client:
        for key in (good, guessed, "fl_" + "x" * 43, other):
            for response in (
                await client.post(
                    SUBMIT, json=submit_body(callback_params={"k": 1}), headers=bearer(key)
                ),
                await client.get("/api/account", headers=bearer(key)),
                await client.get("/api/aigc/task/1", headers=bearer(key)),
                await client.get("/api/aigc/task/not-a-number", headers=bearer(key)),
                await client.post(DETECT, content=b"\x00", headers=bearer(key)),
                await client.get("/api/aigc/task/1", headers={"Authorization": key}),
            ):
                bodies.append(response.text)
                bodies.extend(f"{name}: {value}" for name, value in response.headers.items())
    assert any('"code":100030' in body for body in bodies)
    assert any('"task_id":"1"' in body for body in bodies)  # the task API answered too
    everything = caplog.text + "\n".join(bodies)
    for key in (good, guessed, other):
        assert key not in everything
        assert key[11:] not in everything  # not even the secret part after the prefix


# -- rate limits -----------------------------------------------------------------------


async def test_failed_auth_is_limited_per_address(make_api: ApiFactory) -> None:
    api = await make_api(accounts=1, auth_failures_per_minute=3)
    async with api.client("203.0.113.7") as attacker, api.client("198.51.100.1") as honest:
        for _ in range(3):
            response = await attacker.get("/api/account", headers=bearer("fl_guess"))
            envelope_of(response, 100030)
        limited = await attacker.get("/api/account", headers=bearer("fl_guess"))
        body = envelope_of(limited, 100099)
        assert limited.status_code == 429 and body["message"] == "rate limit exceeded"
        assert limited.headers["retry-after"] == "20"  # one failure per 20 s refills
        # Even a right key is not checked from that address for now ...
        again = await attacker.get("/api/account", headers=bearer(api.keys[0]))
        assert again.status_code == 429
        # ... while other addresses are unaffected.
        envelope_of(await honest.get("/api/account", headers=bearer(api.keys[0])), 100000)
        api.clock.now += 20
        envelope_of(await attacker.get("/api/account", headers=bearer(api.keys[0])), 100000)


async def test_requests_per_second_are_limited_per_key(make_api: ApiFactory) -> None:
    api = await make_api(accounts=2, rate_limit_rps=3)
    first, second = api.keys
    async with api.client() as client:
        for _ in range(3):
            envelope_of(await client.get("/api/account", headers=bearer(first)), 100000)
        limited = await client.get("/api/aigc/task/1", headers=bearer(first))
        assert limited.status_code == 429
        assert envelope_of(limited, 100099)["message"] == "rate limit exceeded"
        assert limited.headers["retry-after"] == "1"
        envelope_of(await client.get("/api/account", headers=bearer(second)), 100000)
        api.clock.now += 1 / 3
        envelope_of(await client.get("/api/account", headers=bearer(first)), 100000)
        # Unauthenticated probes are not limited.
        for _ in range(10):
            assert (await client.get("/healthz")).status_code == 200


async def test_tasks_per_minute_are_limited_per_key(make_api: ApiFactory) -> None:
    api = await make_api(accounts=2, rate_limit_tasks_per_minute=5)
    first, second = api.keys
    async with api.client() as client:
        envelope_of(await client.post(SUBMIT, json=submit_body(3), headers=bearer(first)), 100000)
        # A refused submission costs no rate: nothing was queued.
        bad = submit_body(2, aigc_type="face_swap")
        for _ in range(5):
            envelope_of(await client.post(SUBMIT, json=bad, headers=bearer(first)), 100010)
        envelope_of(await client.post(SUBMIT, json=submit_body(2), headers=bearer(first)), 100000)
        limited = await client.post(SUBMIT, json=submit_body(1), headers=bearer(first))
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "12"  # 5 tasks a minute: one per 12 s
        envelope_of(await client.post(SUBMIT, json=submit_body(5), headers=bearer(second)), 100000)
        api.clock.now += 12
        envelope_of(await client.post(SUBMIT, json=submit_body(1), headers=bearer(first)), 100000)


# -- isolation -------------------------------------------------------------------------


async def test_a_key_reads_only_its_own_accounts_tasks(make_api: ApiFactory) -> None:
    api = await make_api(accounts=2)
    owner, stranger = api.keys
    async with api.client() as client:
        created = envelope_of(
            await client.post(
                SUBMIT, json=submit_body(2, callback_params={"secret": "s3"}), headers=bearer(owner)
            ),
            100000,
        )["data"]
        task_id = created["task_id_list"][0]
        creation = created["creation_id"]
        mine = envelope_of(
            await client.get(f"/api/aigc/task/{task_id}", headers=bearer(owner)), 100000
        )
        assert mine["data"]["request_context"] == {"secret": "s3"}
        for path in (f"/api/aigc/task/{task_id}", f"/api/aigc/creation/{creation}"):
            foreign = await client.get(path, headers=bearer(stranger))
            assert foreign.status_code == 404
            assert "not found" in envelope_of(foreign, 100010)["message"]
            assert "s3" not in foreign.text
        unknown = await client.get("/api/aigc/task/999999", headers=bearer(stranger))
        assert unknown.status_code == 404 and unknown.json() | {"message": ""} == foreign.json() | {
            "message": ""
        }  # a foreign id and a missing id look the same
        usage = envelope_of(await client.get("/api/account", headers=bearer(stranger)), 100000)
        assert (
            usage["data"]["credits"] == 1000 and sum(usage["data"]["usage"]["tasks"].values()) == 0
        )


# -- found by schemathesis -------------------------------------------------------------


async def test_ids_beyond_bigint_are_not_found(make_api: ApiFactory) -> None:
    api = await make_api(accounts=1)
    async with api.client() as client:
        for task_id in (2**63, 10**30, -(2**63) - 1, 0):
            response = await client.get(f"/api/aigc/task/{task_id}", headers=bearer(api.keys[0]))
            assert response.status_code == 404
            envelope_of(response, 100010)


async def test_detect_body_with_wrong_types_is_invalid(make_api: ApiFactory) -> None:
    api = await make_api(accounts=1)
    async with api.client() as client:
        for body in ({"image_url": False}, {"image_base64": 7}, {"attributes": "pose"}):
            response = await client.post(DETECT, json=body, headers=bearer(api.keys[0]))
            assert response.status_code == 200
            assert envelope_of(response, 100010)["message"].startswith("invalid parameter ")
