"""Submit and query use cases: what the API does, without HTTP.

The API layer parses the wire format; this module applies the business rules (which
values are allowed, how many tasks, who may see what) and talks to the store.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from facelens.application.keys import hash_key
from facelens.application.ports import Clock, Store
from facelens.core.callbacks import dump_json
from facelens.core.domain import Account, DetectOptions, JsonObject, NewTask, TaskView, Usage
from facelens.core.errors import InvalidKey, InvalidParameter

AIGC_TYPE = "face_detect"
LANDMARK_CHOICES = frozenset({"5", "68", "none"})

UrlCheck = Callable[[str], str]
"""Validates a URL's form (scheme, host, length); raises ValueError naming the problem."""


@dataclass(frozen=True, slots=True)
class RawTask:
    """One `task_list` entry after wire parsing, before the business rules."""

    image_url: str
    callback_params: JsonObject | None
    options: JsonObject


@dataclass(frozen=True, slots=True)
class SubmitResult:
    creation_id: str
    task_ids: list[int]
    credits_consumed: int


@dataclass(frozen=True, slots=True)
class IntakeRules:
    """What a submission may contain (settings and detector capabilities)."""

    max_tasks: int = 100
    landmark_modes: frozenset[str] = frozenset({"5", "none"})
    attributes: frozenset[str] = frozenset()
    modes: frozenset[str] = frozenset()
    max_min_face_size: int = 4096
    max_callback_params_bytes: int = 16_384
    url_check: UrlCheck | None = None


@dataclass(slots=True)
class TaskService:
    store: Store
    clock: Clock
    rules: IntakeRules
    on_submitted: Callable[[], None] = field(default=lambda: None)
    """Wakes an in-process worker at once instead of waiting for its next poll."""

    async def authenticate(self, key: str | None) -> Account:
        if not key:
            raise InvalidKey("missing API key")
        account = await self.store.account_for_key(hash_key(key))
        if account is None:
            raise InvalidKey("unknown or revoked API key")
        return account

    async def submit(
        self,
        account: Account,
        aigc_type: str,
        callback_url: str,
        raw_tasks: Sequence[RawTask],
    ) -> SubmitResult:
        if aigc_type != AIGC_TYPE:
            raise InvalidParameter("aigc_type", f"must be {AIGC_TYPE!r}")
        self.check_url("callback_url", callback_url)
        if not raw_tasks:
            raise InvalidParameter("task_list", "must contain at least one task")
        if len(raw_tasks) > self.rules.max_tasks:
            raise InvalidParameter("task_list", f"at most {self.rules.max_tasks} tasks per request")
        tasks = [self._intake(i, raw) for i, raw in enumerate(raw_tasks)]
        creation_id = secrets.token_hex(16)
        ids = await self.store.submit(
            account.id, creation_id, callback_url, tasks, self.clock.now_ms()
        )
        self.on_submitted()
        return SubmitResult(creation_id=creation_id, task_ids=ids, credits_consumed=len(ids))

    def parse_options(self, prefix: str, params: JsonObject) -> DetectOptions:
        """`additional_params` knobs -> DetectOptions; unknown keys are ignored."""
        threshold = _optional_number(prefix, params, "score_threshold", 0.0, 1.0)
        min_face = _optional_int(prefix, params, "min_face_size", 1, self.rules.max_min_face_size)
        max_faces = _optional_int(prefix, params, "max_faces", 1, 10_000)
        landmarks = params.get("landmarks", "5")
        if isinstance(landmarks, int) and not isinstance(landmarks, bool):
            landmarks = str(landmarks)
        if landmarks not in self.rules.landmark_modes:
            allowed = ", ".join(sorted(self.rules.landmark_modes))
            raise InvalidParameter(f"{prefix}.landmarks", f"must be one of {allowed}")
        attributes = params.get("attributes", [])
        if not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes):
            raise InvalidParameter(f"{prefix}.attributes", "must be a list of strings")
        unknown = sorted(set(attributes) - self.rules.attributes)
        if unknown:
            raise InvalidParameter(f"{prefix}.attributes", f"unsupported: {', '.join(unknown)}")
        mode = params.get("mode")
        if mode is not None and mode not in self.rules.modes:
            allowed = ", ".join(sorted(self.rules.modes)) or "none available"
            raise InvalidParameter(f"{prefix}.mode", f"must be one of {allowed}")
        return DetectOptions(
            score_threshold=threshold,
            min_face_size=min_face,
            max_faces=max_faces,
            landmarks=landmarks,
            attributes=tuple(dict.fromkeys(attributes)),
            mode=mode,
        )

    async def get_task(self, account: Account, task_id: int) -> TaskView | None:
        return await self.store.get_task(account.id, task_id)

    async def get_creation(self, account: Account, creation_id: str) -> list[TaskView]:
        return await self.store.get_creation(account.id, creation_id)

    async def usage(self, account: Account) -> tuple[Account, Usage]:
        fresh, usage = await asyncio.gather(
            self.store.get_account(account.id), self.store.usage(account.id)
        )
        return (fresh or account), usage

    def _intake(self, index: int, raw: RawTask) -> NewTask:
        prefix = f"task_list[{index}].additional_params"
        self.check_url(f"{prefix}.target_image_url", raw.image_url)
        params = raw.callback_params if raw.callback_params is not None else {}
        if len(dump_json(params).encode()) > self.rules.max_callback_params_bytes:
            raise InvalidParameter(
                f"task_list[{index}].callback_params",
                f"larger than {self.rules.max_callback_params_bytes} bytes",
            )
        return NewTask(
            image_url=raw.image_url,
            callback_params=params,
            options=self.parse_options(prefix, raw.options),
        )

    def check_url(self, name: str, url: str) -> None:
        """Raises InvalidParameter naming `name` when the URL's form is refused."""
        if self.rules.url_check is None:
            return
        try:
            self.rules.url_check(url)
        except ValueError as exc:
            raise InvalidParameter(name, str(exc)) from None


def _optional_number(
    prefix: str, params: JsonObject, key: str, low: float, high: float
) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameter(f"{prefix}.{key}", "must be a number")
    if not low <= value <= high:
        raise InvalidParameter(f"{prefix}.{key}", f"must be between {low:g} and {high:g}")
    return float(value)


def _optional_int(prefix: str, params: JsonObject, key: str, low: int, high: int) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"{prefix}.{key}", "must be an integer")
    if not low <= value <= high:
        raise InvalidParameter(f"{prefix}.{key}", f"must be between {low} and {high}")
    return value
