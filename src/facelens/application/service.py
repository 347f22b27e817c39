"""Submit and query use cases: what the API does, without HTTP.

The API layer parses the wire format; `IntakeRules` (application/intake.py) applies the
business rules to each task; this module checks the submission as a whole (type, size,
callback URL), authenticates, and talks to the store.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from facelens.application.intake import IntakeRules, RawTask
from facelens.application.keys import hash_key
from facelens.application.ports import Clock, Store
from facelens.application.telemetry import NO_TELEMETRY, Telemetry
from facelens.core.domain import Account, TaskView, Usage
from facelens.core.errors import InvalidKey, InvalidParameter

AIGC_TYPE = "face_detect"


@dataclass(frozen=True, slots=True)
class SubmitResult:
    creation_id: str
    task_ids: list[int]
    credits_consumed: int


@dataclass(slots=True)
class TaskService:
    store: Store
    clock: Clock
    rules: IntakeRules
    on_submitted: Callable[[], None] = field(default=lambda: None)
    """Wakes an in-process worker at once instead of waiting for its next poll."""
    telemetry: Telemetry = field(default=NO_TELEMETRY)

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
        self.rules.check_url("callback_url", callback_url)
        if not raw_tasks:
            raise InvalidParameter("task_list", "must contain at least one task")
        if len(raw_tasks) > self.rules.max_tasks:
            raise InvalidParameter("task_list", f"at most {self.rules.max_tasks} tasks per request")
        tasks = [self.rules.task(i, raw) for i, raw in enumerate(raw_tasks)]
        creation_id = secrets.token_hex(16)
        ids = await self.store.submit(
            account.id, creation_id, callback_url, tasks, self.clock.now_ms()
        )
        self.on_submitted()
        self.telemetry.tasks_submitted(len(ids))
        consumed = sum(task.credits for task in tasks)  # a video reserves its max_frames
        self.telemetry.credits("charged", consumed)  # its unused part counts as refunded
        return SubmitResult(creation_id=creation_id, task_ids=ids, credits_consumed=consumed)

    async def get_task(self, account: Account, task_id: int) -> TaskView | None:
        return await self.store.get_task(account.id, task_id)

    async def get_creation(self, account: Account, creation_id: str) -> list[TaskView]:
        return await self.store.get_creation(account.id, creation_id)

    async def usage(self, account: Account) -> tuple[Account, Usage]:
        fresh, usage = await asyncio.gather(
            self.store.get_account(account.id), self.store.usage(account.id)
        )
        return (fresh or account), usage
