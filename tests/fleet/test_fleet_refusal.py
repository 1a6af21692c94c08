"""A fleet whose hosts would keep run records or breakers in a local file is refused where runs start.

The skill, records and status-check flows are what a worker on any host executes: each ends Failed with
the doctor's one-line reason before any model call, once (no retry), and leaves nothing behind.
"""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client

from aios.config.runtime import get_runtime
from aios.outage import health_store
from aios.validation.doctor import DoctorReport, Status, check_fleet

pytestmark = pytest.mark.e2e


@pytest.fixture
def fleet_on_local_state(stack, emulator, monkeypatch):
    """This process as a worker host of a fleet, on the default JSON store and breaker file."""
    monkeypatch.setenv("AIOS_FLEET", "multi")
    for name in ("AIOS_STATE_BACKEND", "AIOS_BREAKER_STORE", "AIOS_BREAKER_REDIS_URL", "AIOS_STATE_SKILL_BACKENDS"):
        monkeypatch.delenv(name, raising=False)
    report = DoctorReport()
    check_fleet(report, get_runtime().settings)
    [row] = report.checks
    assert row.status is Status.fail
    yield row.detail
    monkeypatch.delenv("AIOS_FLEET")


async def run_count(state) -> int:
    async with get_client() as client:
        return (await client.read_flow_run(state.state_details.flow_run_id)).run_count


async def test_a_skill_flow_on_a_worker_of_such_a_fleet_fails_with_doctors_reason_before_any_model_call(fleet_on_local_state, emulator):
    from flows.skill_flow import build_skill_flow

    state = await build_skill_flow("weekly-report")(return_state=True)
    assert state.is_failed() and state.message == fleet_on_local_state
    assert "AIOS_STATE_BACKEND=json" in state.message and "breakers in the default local file" in state.message
    assert emulator.requests() == [], "no model was called"
    assert await run_count(state) == 1, "a refusal is not retried"


async def test_a_records_flow_on_a_worker_of_such_a_fleet_fails_with_doctors_reason_before_any_model_call(fleet_on_local_state, emulator):
    from flows.records import build_records_flow

    state = await build_records_flow("research-lead")(return_state=True)
    assert state.is_failed() and state.message == fleet_on_local_state
    assert emulator.requests() == [], "no model was called"


async def test_the_status_check_on_such_a_fleet_fails_with_doctors_reason_and_decides_nothing(fleet_on_local_state, emulator):
    from flows.status_check import status_check

    state = await status_check(return_state=True)
    assert state.is_failed() and state.message == fleet_on_local_state
    assert emulator.requests() == [], "no probe was sent"
    assert health_store.read_state()[1] is None, "no health was decided"
    assert health_store.read_view() is None, "no health was published"
