"""The soak audit's reading of health alerts: one alert per change, counted by what changed."""

from __future__ import annotations

from bench.soak.audit import tally_alerts


def alert(message: str, title: str = "aios: provider health changed") -> dict:
    return {"title": title, "message": message}  # Apprise json:// body


def test_an_outage_alerted_down_and_recovered_counts_two_claude_alerts_and_no_repeat():
    tally = tally_alerts([
        alert("anthropic: healthy -> down (status page: major outage)\nanthropic:claude-opus-5-5: healthy -> down"),
        alert("x answered by openai", title="aios: failing over from anthropic"),
        alert("anthropic: down -> healthy", title="aios: recovered"),
    ])
    assert (tally.claude, tally.models, tally.other, tally.repeated) == (2, 0, 0, [])


def test_model_level_and_other_provider_changes_are_told_apart_from_claude():
    tally = tally_alerts([
        alert("openai:gpt-5.4: healthy -> degraded (error rate 40%)"),
        alert("openai: healthy -> degraded"),
        alert("openai:gpt-5.4: degraded -> healthy\nopenai: degraded -> healthy", title="aios: recovered"),
    ])
    assert (tally.claude, tally.models, tally.other, tally.repeated) == (0, 1, 2, [])


def test_the_same_change_alerted_twice_in_a_row_is_a_repeat():
    tally = tally_alerts([alert("anthropic: healthy -> down"), alert("anthropic: healthy -> down")])
    assert tally.repeated == ["anthropic: healthy -> down"]
