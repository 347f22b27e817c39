import pytest

from facelens.core.retry import (
    DEFAULT_SCHEDULE_S,
    STORE_RETRY_DELAYS_S,
    Backoff,
    next_attempt_at,
    parse_schedule,
)


def test_default_schedule_is_the_hosted_apis() -> None:
    assert DEFAULT_SCHEDULE_S == (5.0, 30.0, 120.0, 300.0)


def test_five_attempts_then_give_up() -> None:
    times = [next_attempt_at(n, 1_000, DEFAULT_SCHEDULE_S) for n in range(1, 6)]
    assert times == [6_000, 31_000, 121_000, 301_000, None]


def test_parse_schedule() -> None:
    assert parse_schedule("0.2, 0.4,1") == (0.2, 0.4, 1.0)
    assert parse_schedule("") == ()
    with pytest.raises(ValueError):
        parse_schedule("5,-1")
    with pytest.raises(ValueError):
        parse_schedule("5,soon")


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_a_success() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.succeeded()
    assert backoff.failed() == 0.5


def test_backoff_longer_first_wait_than_cap() -> None:
    """A loop polling every 60 s waits that long after its first failure, then the cap."""
    backoff = Backoff(60.0, 10.0)
    assert [backoff.failed() for _ in range(3)] == [60.0, 10.0, 10.0]


def test_store_writes_are_tried_six_times_over_about_fifteen_seconds() -> None:
    assert STORE_RETRY_DELAYS_S == (0.5, 1.0, 2.0, 4.0, 8.0)
    assert Backoff(0.5, 8.0).delays(1) == ()
