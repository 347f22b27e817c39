import pytest

from facelens.core.retry import DEFAULT_SCHEDULE_S, next_attempt_at, parse_schedule


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
