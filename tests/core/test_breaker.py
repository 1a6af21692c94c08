"""Circuit breaker: opens after consecutive failures, half-opens after the cool-down."""

from aios.core.breaker import BreakerBoard, BreakerState, CircuitBreaker
from aios.core.policy import BreakerPolicy


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_opens_after_consecutive_failures_and_skips_calls():
    clock = Clock()
    breaker = CircuitBreaker("anthropic:a", BreakerPolicy(failure_threshold=2, cooldown=10), clock=clock)
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.open
    assert not breaker.allow()


def test_a_success_resets_the_count():
    breaker = CircuitBreaker("anthropic:a", BreakerPolicy(failure_threshold=2, cooldown=10), clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.closed


def test_half_open_lets_one_trial_through_and_closes_on_success():
    clock = Clock()
    breaker = CircuitBreaker("anthropic:a", BreakerPolicy(failure_threshold=1, cooldown=5), clock=clock)
    breaker.record_failure()
    clock.now = 5.0
    assert breaker.state is BreakerState.half_open
    assert breaker.allow()
    assert not breaker.allow(), "only one trial at a time"
    breaker.record_success()
    assert breaker.state is BreakerState.closed and breaker.allow()


def test_failed_trial_opens_again_for_a_full_cooldown():
    clock = Clock()
    breaker = CircuitBreaker("anthropic:a", BreakerPolicy(failure_threshold=1, cooldown=5), clock=clock)
    breaker.record_failure()
    clock.now = 6.0
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.open
    clock.now = 10.0
    assert not breaker.allow()
    clock.now = 11.0
    assert breaker.allow()


def test_board_shares_one_breaker_per_target():
    board = BreakerBoard(BreakerPolicy(failure_threshold=1))
    board.get("anthropic:a").record_failure()
    assert board.get("anthropic:a").state is BreakerState.open
    assert board.states() == {"anthropic:a": BreakerState.open}
    assert board.get("anthropic:b").state is BreakerState.closed
