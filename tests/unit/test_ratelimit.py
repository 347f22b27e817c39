"""Token buckets with a fake clock: burst, refill, costs, refunds, bounded memory."""

from __future__ import annotations

import pytest

from facelens.entrypoints.api.ratelimit import ApiLimits, RateLimited, RateLimiter
from facelens.entrypoints.config import load_settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refusal_with_the_time_to_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=4, clock=clock)
    assert [limiter.acquire("k") for _ in range(4)] == [0.0] * 4
    assert limiter.acquire("k") == pytest.approx(0.5)  # one token at 2 per second
    clock.now += 0.25
    assert limiter.acquire("k") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k") > 0


def test_refill_is_capped_at_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.acquire("k")
    clock.now += 3600
    assert [limiter.acquire("k") for _ in range(3)] == [0.0] * 3
    assert limiter.acquire("k") > 0


def test_keys_are_independent() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=FakeClock())
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0.0


def test_cost_and_refund() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=100 / 60, burst=100, clock=clock)
    assert limiter.acquire("k", 60) == 0.0
    assert limiter.acquire("k", 60) == pytest.approx(20 / (100 / 60))  # 20 tokens short
    limiter.refund("k", 60)  # the first submission was refused after all
    assert limiter.acquire("k", 100) == 0.0
    # A cost above the burst waits for a full bucket instead of never passing.
    clock.now += 60
    assert limiter.acquire("k", 500) == 0.0


def test_check_raises_with_a_whole_second_retry_after() -> None:
    limiter = RateLimiter(rate=20.0, burst=20, clock=FakeClock())
    for _ in range(20):
        limiter.check("k")
    with pytest.raises(RateLimited) as caught:
        limiter.check("k")
    assert caught.value.retry_after_s == pytest.approx(0.05)
    assert caught.value.retry_after_header == "1"
    assert str(caught.value) == "rate limit exceeded"
    assert RateLimited(61.2).retry_after_header == "62"


def test_peeking_consumes_and_creates_nothing() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=FakeClock())
    assert limiter.wait_time("new") == 0.0
    assert len(limiter) == 0
    limiter.acquire("k")
    assert limiter.wait_time("k") == pytest.approx(1.0)
    assert limiter.wait_time("k") == pytest.approx(1.0)


def test_zero_rate_disables() -> None:
    limiter = RateLimiter(rate=0, burst=0, clock=FakeClock())
    assert all(limiter.acquire("k") == 0.0 for _ in range(10_000))
    assert len(limiter) == 0


def test_memory_is_bounded_least_recently_used_goes_first() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=FakeClock(), max_keys=100)
    limiter.acquire("old")
    for index in range(10_000):
        limiter.acquire(f"address-{index}")
    assert len(limiter) == 100
    assert limiter.acquire("old") == 0.0  # evicted, so full again (documented trade-off)


def test_limits_from_settings() -> None:
    clock = FakeClock()
    settings = load_settings(
        {
            "FACELENS_RATE_LIMIT_RPS": "5",
            "FACELENS_RATE_LIMIT_TASKS_PER_MINUTE": "120",
            "FACELENS_AUTH_FAILURES_PER_MINUTE": "3",
        }
    )
    limits = ApiLimits.from_settings(settings, clock)
    assert [limits.requests.acquire("k") for _ in range(6)][-1] > 0
    assert limits.tasks.acquire("k", 120) == 0.0
    assert limits.tasks.acquire("k", 1) == pytest.approx(0.5)  # 2 tasks per second
    assert [limits.auth_failures.acquire("ip") for _ in range(4)][-1] == pytest.approx(20.0)
    defaults = load_settings({})
    assert defaults.rate_limit_rps == 20
    assert defaults.rate_limit_tasks_per_minute == 6000
    assert defaults.auth_failures_per_minute == 30
