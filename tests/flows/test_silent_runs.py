"""A missing heartbeat is no proof of death: a live run whose heartbeats were lost (a server restart, an
events client that gave up) and that was marked Crashed for it is never executed twice.

Measured across a 71 s server restart: the heartbeats a live run emitted meanwhile reached the server
~15 s after it was back, and until then the run had none on record for 90 s -- the sweep's rule for a
dead run. Resubmitted then, it and its successor both completed with a record each (most likely the
soak's one double execution). Here the sweep's verdict is forced (`window=0`), as late heartbeats force it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import StateType
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

from aios.outage import recovery
from aios.state import open_store
from tests.flows.test_killed_worker import HEARTBEAT_SECONDS, own_workers, wait_for  # noqa: F401 - a fixture
from tests.helpers import wait_final

pytestmark = pytest.mark.e2e


async def start_weekly_report(client, emulator, answer_after: float):
    """A weekly-report deployment run that is waiting `answer_after` seconds for Claude's answer."""
    emulator.set_fault("anthropic", "slow", delay=answer_after, times=1)
    deployment = await client.read_deployment_by_name("weekly-report/weekly-report")
    run = await client.create_flow_run_from_deployment(deployment.id, parameters={"inputs": {"week": f"silent-{uuid4().hex[:6]}"}})

    async def mid_call():
        return [r for r in emulator.requests("anthropic") if r["mode"] == "slow"]

    await wait_for(mid_call, "the run never asked Claude", 120)
    return run


async def wait_past_crashed(client, run_id, timeout: float = 180):
    """The run once it left the Crashed its silence got it (Crashed is final: wait_final would stop there)."""

    async def ended():
        run = await client.read_flow_run(run_id)
        return run if run.state.is_final() and run.state.type is not StateType.CRASHED else None

    return await wait_for(ended, f"run {run_id} never ended otherwise than Crashed", timeout, every=1)


async def successors(client, run_id) -> list:
    return await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"resubmits:{run_id}"])))


async def test_a_run_marked_crashed_for_its_silence_that_beats_again_is_left_to_finish_not_submitted_again(
    deployed, emulator, own_workers  # noqa: F811
):
    own_workers(PREFECT_FLOWS_HEARTBEAT_FREQUENCY=str(HEARTBEAT_SECONDS))
    async with get_client() as client:
        run = await start_weekly_report(client, emulator, answer_after=HEARTBEAT_SECONDS + 40)
        assert await recovery.crash_silent_running(["weekly-report"], window=timedelta(0)) == [str(run.id)]
        crashed_at = (await client.read_flow_run(run.id)).state.timestamp

        async def beat_after_the_crash():
            page = await client.read_events(
                EventFilter(
                    occurred=EventOccurredFilter(since=crashed_at, until=datetime.now(UTC)),
                    event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
                    resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
                ),
                limit=1,
            )
            return page.events

        await wait_for(beat_after_the_crash, "the live run's next heartbeat never reached the server", HEARTBEAT_SECONDS + 30)
        assert (await client.read_flow_run(run.id)).state.type is StateType.CRASHED, "still marked Crashed, and alive"
        silent_for = datetime.now(UTC) - crashed_at
        assert await recovery.resubmit_crashed(["weekly-report"], confirm=silent_for) == [], "a run that beats is alive"
        assert await successors(client, run.id) == []

        finished = await wait_past_crashed(client, run.id)
        assert finished.state.type is StateType.COMPLETED and finished.state.name == "Completed", finished.state_name
        assert await recovery.resubmit_crashed(["weekly-report"], confirm=timedelta(0)) == []
        assert await successors(client, run.id) == []
    record = open_store(skill="weekly-report").get("runs", str(run.id))
    assert record is not None and record.data["status"] == "completed" and record.version == 1
    assert len([r for r in emulator.requests() if r.get("status") == 200]) == 1, "paid once"


async def test_a_live_run_declared_dead_and_submitted_again_stands_down_so_its_occurrence_completes_once(deployed, emulator):
    """Its heartbeats taken as lost (`confirm=0`: the sweep believes its mark at once), a successor runs;
    the live run, when about to record, finds it and stands down."""
    async with get_client() as client:
        # A run can be declared dead 90 s after it was created at the earliest, and only then checks.
        run = await start_weekly_report(client, emulator, answer_after=recovery.EARLIEST_DEATH.total_seconds() + 10)
        assert await recovery.crash_silent_running(["weekly-report"], window=timedelta(0)) == [str(run.id)]
        resubmitted = await recovery.resubmit_crashed(["weekly-report"], confirm=timedelta(0))
        assert len(resubmitted) == 1, resubmitted
        new_id = resubmitted[0]

        successor = await wait_final(new_id, timeout=180)
        old = await wait_past_crashed(client, run.id)
        assert successor.state.type is StateType.COMPLETED and successor.state.name == "Completed", successor.state_name
        assert old.state.type is StateType.CANCELLED and old.state.name == "Superseded", (old.state_name, old.state.message)
        assert new_id in old.state.message, old.state.message
        history = [s.name for s in await client.read_flow_run_states(run.id)]
        assert "Completed" not in history, history
    store = open_store(skill="weekly-report")
    assert store.get("runs", new_id) is None, "the occurrence's record lives under its first run"
    record = store.get("runs", str(run.id))
    assert record is not None and record.data["run_id"] == new_id, "the superseded run wrote no record"
    assert record.data["status"] == "completed" and record.version == 1
    # The successor asked while the live run still waited for its answer, so there was none to reuse yet.
    assert len([r for r in emulator.requests() if r.get("status") == 200]) == 2
