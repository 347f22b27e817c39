"""schemathesis against the served OpenAPI schema, in process (ASGI).

Every operation gets generated requests, valid and invalid (wrong types, missing
fields, random bytes as uploads), with a real key: no answer may be a 5xx and every
answer must be a `{code, message, data}` envelope. The image fetcher is replaced by
one that refuses every URL, so nothing generated ever leaves the process (the real
fetcher's rules are tested in test_safe_http.py); rate limits are off so they do not
hide the endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error

from facelens.adapters.images import PillowDecoder
from facelens.adapters.store.migrate import upgrade
from facelens.application.instant import InstantDetection
from facelens.application.pipeline import ImagePipeline
from facelens.application.ports import FetchedImage
from facelens.core.domain import DecodedImage, DetectOptions, Face
from facelens.core.errors import ImageDownloadFailed
from facelens.entrypoints.admin import create_account
from facelens.entrypoints.api.app import create_app
from facelens.entrypoints.bootstrap import Services, open_services
from facelens.entrypoints.config import Settings, load_settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EXAMPLES = 50
"""Per operation and generation mode (two requests each: a real key and a wrong one)."""
WITH_INPUT = (
    "/api/aigc/task/submit",
    "/api/aigc/task/{task_id}",
    "/api/aigc/creation/{creation_id}",
    "/api/face/detect",
)
TYPED_INPUT = ("/api/aigc/task/submit", "/api/aigc/task/{task_id}", "/api/face/detect")


class NoFaces:
    name = "no-faces"

    def detect(self, image: DecodedImage, options: DetectOptions) -> list[Face]:
        return []


class NoNetwork:
    async def fetch(self, url: str) -> FetchedImage:
        raise ImageDownloadFailed("no network in this test")


@contextlib.asynccontextmanager
async def offline_services(settings: Settings, with_worker: bool) -> AsyncIterator[Services]:
    async with open_services(settings, with_worker=False, detector=NoFaces()) as services:
        pipeline = ImagePipeline(NoNetwork(), PillowDecoder(settings.max_image_pixels), NoFaces())
        services.pipeline = pipeline
        services.instant = InstantDetection(
            services.store, services.clock, pipeline, settings.refund_failed
        )
        yield services


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    config = load_settings(
        {},
        data_dir=data_dir,
        rate_limit_rps=0,
        rate_limit_tasks_per_minute=0,
        auth_failures_per_minute=0,
    )

    async def prepare() -> str:
        await upgrade(config.resolved_database_url)
        return (await create_account(config, "fuzz", 1_000_000)).api_key

    key = asyncio.run(prepare())
    app = create_app(config, with_worker=False, services_factory=offline_services)
    yield schemathesis.openapi.from_asgi("/openapi.json", app), key
    with contextlib.suppress(Exception):  # stop the services schemathesis started
        from schemathesis.python.asgi import shutdown_lifespans

        shutdown_lifespans()


def check(case: Case[Any], key: str) -> None:
    for token in (key, "fl_not-a-key"):
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        case.validate_response(response, checks=[not_a_server_error])
        if case.path in ("/", "/docs", "/redoc", "/openapi.json", "/metrics"):
            continue  # the console, the schema and metrics are not API answers
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"code", "message", "data"}, body
        assert body["code"] in {100000, 100010, 100030, 100040, 100099}, body
        assert isinstance(body["message"], str) and body["message"], body
        assert key not in response.text


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_is_an_envelope_and_never_a_5xx(
    served: tuple[Any, str], mode: GenerationMode
) -> None:
    schema, key = served
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {*WITH_INPUT, "/api/account"}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Case[Any]) -> None:
            check(case, key)

        try:
            run()
        except Unsatisfiable:
            # Nothing to break without typed input (/healthz, a string path parameter).
            assert mode is GenerationMode.NEGATIVE and operation.path not in TYPED_INPUT
