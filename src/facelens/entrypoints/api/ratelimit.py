"""In-process token buckets: requests per key, tasks per key, failed logins per address.

Limits are per process: with N API processes (nodes or workers) behind a load balancer
the effective limit is N times the setting. They protect one process from one noisy
client; they are not a billing quota (credits are).

`RateLimiter` is pure logic with an injectable clock. Each bucket holds up to `burst`
tokens and refills at `rate` tokens per second; a bucket that has refilled completely
is the same as no bucket, so the table keeps at most `max_keys` entries and drops the
least recently used one first (an attacker cycling through addresses can reset its own
buckets, not grow memory).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from facelens.entrypoints.config import Settings

RATE_LIMITED_MESSAGE = "rate limit exceeded"


class RateLimited(Exception):
    """Answered as HTTP 429, code 100099, with Retry-After (whole seconds, at least 1)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(RATE_LIMITED_MESSAGE)
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_s)))


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by a string; `rate <= 0` disables the limiter."""

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, key: str) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
            self._buckets.move_to_end(key)
        return bucket

    def wait_time(self, key: str, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens are available (0 = now); consumes nothing."""
        if not self.enabled:
            return 0.0
        if key not in self._buckets:
            return 0.0  # a new bucket is full; peeking does not create one
        cost = min(cost, self.burst)  # a request larger than the burst waits for a full one
        bucket = self._bucket(key)
        return 0.0 if bucket.tokens >= cost else (cost - bucket.tokens) / self.rate

    def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take `cost` tokens and return 0, or take nothing and return the seconds to wait."""
        if not self.enabled:
            return 0.0
        bucket = self._bucket(key)
        cost = min(cost, self.burst)
        if bucket.tokens < cost:
            return (cost - bucket.tokens) / self.rate
        bucket.tokens -= cost
        return 0.0

    def check(self, key: str, cost: float = 1.0) -> None:
        """`acquire`, raising RateLimited instead of returning a wait."""
        wait = self.acquire(key, cost)
        if wait > 0:
            raise RateLimited(wait)

    def refund(self, key: str, cost: float = 1.0) -> None:
        """Give back tokens taken for work that was then refused for another reason."""
        if self.enabled and key in self._buckets:
            bucket = self._bucket(key)
            bucket.tokens = min(self.burst, bucket.tokens + min(cost, self.burst))


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """The three limiters of one API process."""

    requests: RateLimiter
    """Authenticated requests per API key: `rate_limit_rps`, burst of one second."""
    tasks: RateLimiter
    """Submitted tasks per API key: `rate_limit_tasks_per_minute`, burst of one minute."""
    auth_failures: RateLimiter
    """Failed authentications per client address: `auth_failures_per_minute`."""

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> ApiLimits:
        rps = settings.rate_limit_rps
        per_minute = settings.rate_limit_tasks_per_minute
        failures = settings.auth_failures_per_minute
        return cls(
            requests=RateLimiter(rps, rps, clock),
            tasks=RateLimiter(per_minute / 60.0, per_minute, clock),
            auth_failures=RateLimiter(failures / 60.0, failures, clock),
        )
