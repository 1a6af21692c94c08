"""When a run marked Crashed for its silence is believed dead (the rules; the e2e side: tests/flows/test_silent_runs.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect.states import Crashed

from aios.outage.recovery import SILENCE, silenced, still_silent
from deployments.automation import zombie_automation

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CONFIRM = timedelta(seconds=45)


def test_a_crash_for_silence_is_told_from_a_death_someone_saw():
    automation = zombie_automation(timedelta(seconds=90)).actions[0]
    assert silenced(Crashed(message=automation.message)), "the automation's crashes wait for confirmation"
    assert silenced(Crashed(message=f"{SILENCE} for 90 s: its process or worker died"))
    assert not silenced(Crashed(message="Flow run infrastructure exited with non-zero status code -9."))
    assert not silenced(Crashed(message=None))


def test_a_silence_is_believed_only_a_confirm_window_after_the_mark_and_only_if_nothing_was_heard():
    assert not still_silent(NOW - timedelta(seconds=10), NOW, CONFIRM, heard=False), "too early to tell"
    assert not still_silent(NOW - timedelta(seconds=60), NOW, CONFIRM, heard=True), "it beat: alive"
    assert still_silent(NOW - timedelta(seconds=60), NOW, CONFIRM, heard=False)
    assert still_silent(NOW - CONFIRM, NOW, CONFIRM, heard=False)


def test_a_stuck_claim_waits_five_minutes_unless_the_setting_says_otherwise(monkeypatch):
    from aios.config.settings import reload_settings
    from aios.outage.recovery import stuck_pending

    monkeypatch.delenv("AIOS_STUCK_PENDING_SECONDS", raising=False)
    reload_settings()
    try:
        assert stuck_pending() == timedelta(minutes=5)
        monkeypatch.setenv("AIOS_STUCK_PENDING_SECONDS", "60")
        reload_settings()
        assert stuck_pending() == timedelta(seconds=60)
    finally:
        monkeypatch.undo()
        reload_settings()
