"""The fire drill's records scenario: no finished step of a record is asked again after a failover."""

from __future__ import annotations

import pytest

from aios.core.workflow import PROGRESS_TABLE
from aios.state import clear_store_cache, open_store

pytestmark = pytest.mark.e2e


async def test_records_resume_scenario_passes_and_counts_one_answer_per_checkpoint(emulator, settings_env):
    from aios.drill.runner import DRILL_ENV
    from deployments.apply import ensure_pool
    from flows.drill import fire_drill

    await ensure_pool()  # the status checks of the drill's recovery pause and resume its deferred queue

    settings_env(**DRILL_ENV)
    clear_store_cache()
    store = open_store(skill="research-lead")
    for table in ("leads", PROGRESS_TABLE):  # the drill seeds the sample leads into empty tables
        for rec in store.list(table):
            store.delete(table, rec.key)
    report = await fire_drill(["records-resume"], control_url=emulator.base_url)
    checks = [c for s in report["scenarios"] if s["name"] == "records-resume" for c in s["checks"]]
    assert [c["expectation"] for c in checks if c["subject"] == "research-lead"] == [
        "5 records, every step answered once",
        "step 'research' kept from Claude, later steps from the fallback",
        "a second run asks no model",
    ]
    assert all(c["passed"] for c in checks), [(c["expectation"], c["detail"]) for c in checks if not c["passed"]]
