"""The rules that turn probes, real calls and status pages into health: pure, no Prefect, no server."""

from aios.core.failures import ErrorClass, FailureKind, ProviderFailure, classify
from aios.core.health import (
    Health,
    HealthSnapshot,
    call_signals,
    calls_health,
    probe_signals,
    unexplained_failover,
    worse,
)
from aios.core.policy import Target

OPUS = Target(provider="anthropic", model="opus")
SONNET = Target(provider="anthropic", model="sonnet")
GPT = Target(provider="openai", model="gpt")


def verdict(status=None, kind=FailureKind.status, retry_after=None):
    return classify(ProviderFailure("boom", kind=kind, status=status, retry_after=retry_after), max_retry_after=2.0)


def by_subject(signals):
    return {s.subject: s.health for s in signals}


def test_half_of_the_calls_failing_twice_or_more_means_down():
    assert calls_health(ok=2, failed=2) is Health.down


def test_a_single_failed_call_is_not_an_outage():
    assert calls_health(ok=0, failed=1) is Health.degraded


def test_one_failure_in_five_calls_degrades():
    assert calls_health(ok=4, failed=1) is Health.degraded
    assert calls_health(ok=5, failed=1) is Health.healthy


def test_call_signals_count_only_failures_the_verdict_holds_against_the_target():
    overloaded, not_found, waited_429 = verdict(529), verdict(404), verdict(429, retry_after=1.0)
    assert (overloaded.unhealthy, not_found.unhealthy, waited_429.unhealthy) == (True, False, False)
    calls = [("anthropic:opus", overloaded.unhealthy)] * 2 + [("openai:gpt", not_found.unhealthy), ("openai:gpt", waited_429.unhealthy)]
    assert by_subject(call_signals(calls)) == {"anthropic:opus": Health.down, "openai:gpt": Health.healthy}


def test_every_model_failing_its_probe_means_the_provider_is_down():
    signals = probe_signals([(OPUS, verdict(529)), (SONNET, verdict(kind=FailureKind.connect_refused)), (GPT, None)])
    health = by_subject(signals)
    assert health["anthropic"] is Health.down
    assert health["openai"] is Health.healthy and health["openai:gpt"] is Health.healthy


def test_one_model_answering_keeps_its_provider_up():
    health = by_subject(probe_signals([(OPUS, verdict(500)), (SONNET, None)]))
    assert health == {"anthropic:opus": Health.down, "anthropic:sonnet": Health.healthy, "anthropic": Health.healthy}


def test_a_probe_failure_that_is_not_the_targets_fault_says_nothing():
    signals = probe_signals([(OPUS, verdict(404)), (SONNET, verdict(404))])
    assert signals == []
    assert verdict(404).error_class is ErrorClass.not_found


def test_primary_is_usable_while_any_of_its_models_is_not_down():
    snapshot = HealthSnapshot(models={"anthropic:opus": Health.down})
    assert snapshot.provider_usable("anthropic", [OPUS, SONNET, GPT])
    snapshot = HealthSnapshot(models={"anthropic:opus": Health.down, "anthropic:sonnet": Health.down})
    assert not snapshot.provider_usable("anthropic", [OPUS, SONNET, GPT])
    assert not HealthSnapshot(providers={"anthropic": Health.down}).provider_usable("anthropic", [OPUS, SONNET])


def test_failover_is_news_only_while_the_primary_is_not_known_down():
    assert unexplained_failover("openai", "anthropic", HealthSnapshot())
    assert not unexplained_failover("openai", "anthropic", HealthSnapshot(providers={"anthropic": Health.down}))
    assert not unexplained_failover("anthropic", "anthropic", HealthSnapshot())


def test_health_ranks_unknown_healthy_degraded_down():
    assert worse(Health.healthy, Health.unknown) is Health.healthy
    assert worse(Health.degraded, Health.down) is Health.down
    assert worse(Health.down, Health.degraded) is Health.down
