"""The ports the use cases depend on. Adapters implement them; tests swap them.

All times are Unix epoch milliseconds (ints), taken from an injectable `Clock`, so the
retry schedule and leases can be driven in tests without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from facelens.core.domain import (
    Account,
    ApiKeyInfo,
    ClaimedTask,
    DecodedImage,
    DeliveryAttempt,
    DeliveryJob,
    DetectOptions,
    Face,
    NewTask,
    TaskOutcome,
    TaskView,
    Usage,
)
from facelens.core.self_service import DayUsage, Redelivery, TaskFilter


class Clock(Protocol):
    def now_ms(self) -> int: ...


StartBody = Callable[[ClaimedTask], str]
"""Builds the exact JSON text of a task's start callback (process_status 1)."""


@dataclass(frozen=True, slots=True)
class TaskFinish:
    """One analysed task a worker wants recorded (see `Store.finish_tasks`)."""

    task_id: int
    outcome: TaskOutcome
    complete_body: str
    """The exact JSON text of the complete callback (process_status 2)."""
    refund: bool
    """Credit the task's 1 credit back (a failure on our side or the image's)."""
    account_id: int | None = None
    """Whose task: for the log line that reports the outcome (not stored)."""


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One callback attempt a dispatcher wants recorded (`Store.record_delivery_attempts`)."""

    delivery_id: int
    attempt: DeliveryAttempt
    delivered: bool
    next_attempt_at_ms: int | None
    """Pending again at this time; None with delivered False: failed for good."""


class Store(Protocol):
    """The database: accounts, keys, ledger, tasks (the queue) and deliveries (the outbox).

    Every method is one transaction. Raises `StoreUnavailable` when the database cannot
    be reached, so callers can answer 100099 and back off.
    """

    # accounts, keys, credits
    async def create_account(
        self, name: str, credits: int, webhook_secret: str, now_ms: int
    ) -> Account:
        """Insert the account and, when credits > 0, its opening ledger row."""
        ...

    async def get_account(self, account_id: int) -> Account | None: ...
    async def list_accounts(self) -> list[Account]: ...
    async def count_accounts(self) -> int: ...
    async def add_key(
        self, account_id: int, prefix: str, key_hash: str, now_ms: int
    ) -> ApiKeyInfo: ...
    async def revoke_key(self, prefix: str, now_ms: int) -> bool: ...
    async def list_keys(self, account_id: int) -> list[ApiKeyInfo]: ...
    async def account_for_key(self, key_hash: str) -> Account | None:
        """The account of a live (not revoked) key, by the key's sha256 hex."""
        ...

    async def add_credits(self, account_id: int, delta: int, reason: str, now_ms: int) -> int:
        """Ledger entry + balance change in one transaction; returns the new balance."""
        ...

    async def charge(self, account_id: int, amount: int, reason: str, now_ms: int) -> int:
        """Debit `amount` if the balance allows it (else InsufficientCredits); new balance."""
        ...

    async def ledger_sum(self, account_id: int) -> int: ...
    async def usage(self, account_id: int) -> Usage: ...

    # submission and query
    async def submit(
        self,
        account_id: int,
        creation_id: str,
        callback_url: str,
        tasks: Sequence[NewTask],
        now_ms: int,
    ) -> list[int]:
        """Debit len(tasks) credits and insert the tasks, atomically.

        Raises InsufficientCredits (nothing written) when the balance is too small.
        Returns the task ids in submission order.
        """
        ...

    async def get_task(self, account_id: int, task_id: int) -> TaskView | None: ...
    async def get_creation(self, account_id: int, creation_id: str) -> list[TaskView]: ...

    # An account's self-service (the console): pages of tasks, redelivery, usage per day.
    async def list_tasks(self, account_id: int, which: TaskFilter, limit: int) -> list[TaskView]:
        """Newest first, at most `limit`."""
        ...

    async def redeliver(self, account_id: int, task_id: int, now_ms: int) -> Redelivery:
        """Make a settled complete callback due again (same body, attempts from zero)."""
        ...

    async def daily_usage(self, account_id: int, since_ms: int) -> list[DayUsage]: ...
    async def revoke_account_key(self, account_id: int, prefix: str, now_ms: int) -> bool: ...

    # the task queue
    async def claim_tasks(
        self, worker_id: str, limit: int, lease_ms: int, now_ms: int, start_body: StartBody
    ) -> list[ClaimedTask]:
        """Claim up to `limit` queued (or lease-expired running) tasks: accounts with
        queued work in turn, each account's oldest first (adapters/store/fairness.py).

        In the same transaction: status running, lease_until = now + lease, worker_id,
        attempts + 1, started_at (kept from the first claim), and the start delivery row
        (process_status 1, body from `start_body`) inserted unless it already exists.
        """
        ...

    async def renew_leases(self, worker_id: str, task_ids: Sequence[int], until_ms: int) -> int:
        """Extend the leases this worker still holds; returns how many it still holds."""
        ...

    async def finish_tasks(
        self, worker_id: str, finishes: Sequence[TaskFinish], now_ms: int
    ) -> set[int]:
        """Record analysed tasks in ONE transaction (a worker's hot path: one commit per
        batch instead of one per task). For each task this worker still holds (status
        running, same worker_id): store the outcome, insert the complete delivery
        (process_status 2) and, when `refund`, credit 1 back with a ledger entry. The
        others are skipped and written nothing. Returns the ids recorded. Task ids
        must be distinct."""
        ...

    async def release_tasks(self, worker_id: str, task_ids: Sequence[int]) -> int:
        """Give unfinished tasks back to the queue (graceful stop)."""
        ...

    # the delivery outbox
    async def claim_deliveries(
        self, dispatcher_id: str, limit: int, lease_ms: int, now_ms: int
    ) -> list[DeliveryJob]:
        """Claim due pending deliveries (next_attempt_at <= now, lease free or expired).

        A complete delivery (2) is due only once the start delivery (1) of the same
        task is no longer pending (delivered or failed).
        """
        ...

    async def record_delivery_attempt(
        self,
        delivery_id: int,
        dispatcher_id: str,
        attempt: DeliveryAttempt,
        delivered: bool,
        next_attempt_at_ms: int | None,
    ) -> None:
        """Append the attempt; delivered -> status delivered; else pending again at
        `next_attempt_at_ms`, or failed when it is None. Releases the lease."""
        ...

    async def record_delivery_attempts(
        self, dispatcher_id: str, records: Sequence[AttemptRecord]
    ) -> None:
        """`record_delivery_attempt` for several deliveries, in one transaction."""
        ...

    async def ping(self) -> None: ...
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FetchedImage:
    data: bytes
    content_type: str
    final_url: str


@dataclass(frozen=True, slots=True)
class CallbackResponse:
    """What one callback POST produced: an HTTP status, or an error text."""

    http_status: int | None
    error: str


class ImageFetcher(Protocol):
    async def fetch(self, url: str) -> FetchedImage:
        """Download an image under the intake rules; raises TaskFailure subclasses."""
        ...


class CallbackSender(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> CallbackResponse:
        """POST one callback; never raises for network trouble (it is reported)."""
        ...


class ImageDecoder(Protocol):
    def decode(
        self, data: bytes, content_type: str = "", min_face_size: int | None = None
    ) -> DecodedImage:
        """Bytes to oriented RGB pixels; raises ImageDecodeFailed / ImageTooLarge / ..."""
        ...


class Detector(Protocol):
    """A loaded face detector. Synchronous and CPU-bound: callers run it in a thread."""

    name: str

    def detect(self, image: DecodedImage, options: DetectOptions) -> list[Face]: ...
