"""Backoff, retry budget and circuit breaker (pure logic, fake clocks)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan_commons.resilience import CircuitBreaker, CircuitState, RetryBudget, backoff_delay


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(st.integers(1, 30), st.floats(0.001, 1.0), st.floats(0.001, 10.0), st.randoms(use_true_random=False))
def test_full_jitter_stays_within_the_exponential_ceiling(
    retry: int, base: float, cap: float, rng: random.Random
):
    delay = backoff_delay(retry, base=base, cap=cap, rng=rng)
    assert 0.0 <= delay <= min(cap, base * 2 ** (retry - 1))


def test_full_jitter_spreads_delays() -> None:
    rng = random.Random(7)
    delays = {round(backoff_delay(4, base=0.1, cap=10, rng=rng), 6) for _ in range(50)}
    assert len(delays) > 40 and max(delays) <= 0.8


def test_backoff_rejects_retry_zero() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, base=0.1, cap=1)


@given(st.integers(0, 500), st.integers(0, 5), st.floats(0.0, 1.0))
def test_budget_never_allows_more_than_ratio_plus_floor(requests: int, floor: int, ratio: float) -> None:
    budget = RetryBudget(ratio=ratio, min_per_second=floor, clock=lambda: 0.0)
    allowed = 0
    for _ in range(requests):
        budget.record_request()
        while budget.try_acquire():  # greedy: retry as much as allowed
            allowed += 1
    assert allowed == budget.retries
    assert allowed <= ratio * requests + floor + 1e-9


def test_budget_floor_refills_each_second() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.0, min_per_second=2, clock=clock)
    assert [budget.try_acquire() for _ in range(3)] == [True, True, False]
    clock.now = 1.0
    assert [budget.try_acquire() for _ in range(3)] == [True, True, False]
    assert budget.refused == 2


def test_budget_tokens_accumulate_with_requests_and_are_capped() -> None:
    budget = RetryBudget(ratio=0.5, min_per_second=0, max_tokens=2.0, clock=lambda: 0.0)
    for _ in range(100):
        budget.record_request()
    assert [budget.try_acquire() for _ in range(3)] == [True, True, False]


def test_circuit_opens_after_threshold_consecutive_failures() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown=5.0, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # not consecutive any more
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == 5.0


def test_half_open_lets_one_trial_through_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5.0, clock=clock)
    breaker.record_failure()
    clock.now = 5.0
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED and breaker.allow()


def test_half_open_trial_failure_reopens_for_a_new_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown=5.0, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.now = 6.0
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    clock.now = 10.0
    assert not breaker.allow()
    clock.now = 11.0
    assert breaker.allow()


def test_released_trial_frees_the_half_open_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=1.0, clock=clock)
    breaker.record_failure()
    clock.now = 1.0
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


@pytest.mark.parametrize(
    ("field", "value"),
    [("default_timeout", 0), ("max_attempts", 0), ("retry_budget_ratio", 1.5), ("attempt_timeout", -1.0)],
)
def test_client_config_refuses_nonsense_naming_the_field(field: str, value: float) -> None:
    from caravan_commons.client_types import ClientConfig

    with pytest.raises(ValueError, match=f"ClientConfig.{field}"):
        ClientConfig(**{field: value})
