"""A process worker SIGKILLed with its flow run mid-call: Prefect's zombie automation marks the run Crashed,
the status check submits it again once it stayed silent a beat and a half longer, and the occurrence
completes with one paid answer, one record and no alert about it (a dead worker is not a provider outage)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import StateType
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from aios.config.bootstrap import result_storage
from aios.drill.stack import Process, descendants, spawn
from aios.outage import recovery
from aios.state import open_store
from deployments import apply
from deployments.automation import NAME as ZOMBIE_AUTOMATION
from tests.flows.test_durable import wait_final

pytestmark = pytest.mark.e2e

HEARTBEAT_SECONDS = 30  # Prefect's minimum; the automation's window is 3 heartbeats


@pytest.fixture
def own_workers(deployed):
    """Only this test's workers poll the pool while it runs; the session's worker is back afterwards."""
    session_workers = sum(p.name.startswith("worker") for p in deployed.processes)
    deployed.stop_workers()
    mine: list[Process] = []

    def start(**env: str) -> Process:
        worker_env = {**deployed.env, "PREFECT_WORKER_QUERY_SECONDS": "1", **env}
        worker = spawn(
            f"killable-worker-{len(mine)}",
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "aios", "--type", "process", "--limit", "2"],
            worker_env, deployed.project, deployed.workdir,
        )
        mine.append(worker)
        return worker

    yield start
    for worker in mine:
        worker.stop()
    if session_workers:
        deployed.start_workers(session_workers)


@pytest.fixture
def zombie_automation_at_30s(deployed):
    """The automation as `aios deploy` installs it for workers beating every 30 s; the session's one after."""
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: HEARTBEAT_SECONDS}):
        asyncio.run(apply.install_automations())
    yield
    asyncio.run(apply.install_automations())


def sigkill_worker_and_its_runs(worker: Process) -> list[int]:
    """SIGKILL the worker's process group and every process below it (each flow run has a session of its own)."""
    family = descendants(worker.proc.pid)
    os.killpg(worker.proc.pid, signal.SIGKILL)  # the worker first: nothing is left to report the crash
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)
    worker.proc.wait(10)
    return family


async def wait_for(predicate, what: str, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await predicate():
            return value
        await asyncio.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


async def test_a_worker_killed_mid_call_is_crashed_by_the_zombie_automation_and_its_occurrence_completes_once(
    deployed, emulator, alert_inbox, own_workers, zombie_automation_at_30s
):
    from flows.status_check import status_check

    heartbeat = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS), "AIOS_ALERT_URLS": os.environ["AIOS_ALERT_URLS"]}
    assert (deployed.database_url or "").startswith("postgresql"), "the session's server is on PostgreSQL"
    async with get_client() as client:
        automation = (await client.read_automations_by_name(ZOMBIE_AUTOMATION))[0]
        assert automation.trigger.within.total_seconds() == 3 * HEARTBEAT_SECONDS
    storage = result_storage(Path(deployed.project))  # where every process of the stack persists paid answers
    persisted_before = set(storage.glob("aios-answer-*"))
    worker = own_workers(**heartbeat)
    emulator.set_fault("anthropic", "hang", times=1)  # the run's Claude call waits for an answer that never comes
    week = f"killed-{uuid4().hex[:6]}"
    async with get_client() as client:
        deployment = await client.read_deployment_by_name("weekly-report/weekly-report")
        run = await client.create_flow_run_from_deployment(deployment.id, parameters={"inputs": {"week": week}})

        async def mid_call():
            return [r for r in emulator.requests("anthropic") if r["mode"] == "hang"]

        await wait_for(mid_call, "the worker's run never called Claude", 120)

        async def heartbeat_seen():
            page = await client.read_events(
                EventFilter(
                    event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
                    resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
                ),
                limit=50,  # the server's maximum (the client's default of 100 is refused)
            )
            return page.events

        await wait_for(heartbeat_seen, "the run's first heartbeat never reached the server", 60)
        in_flight = await client.read_flow_run(run.id)
        assert in_flight.state.type is StateType.RUNNING and in_flight.infrastructure_pid, in_flight.state_name
        killed = sigkill_worker_and_its_runs(worker)
        flow_pid = int(in_flight.infrastructure_pid.rsplit(":", 1)[-1])
        assert flow_pid in killed, f"the flow process {flow_pid} was not below the worker: {killed}"
        killed_at = time.monotonic()

        async def crashed():
            current = await client.read_flow_run(run.id)
            return current if current.state.type is not StateType.RUNNING else None

        # a heartbeat every 30 s, the next expected within 90 s, proactive triggers evaluated every 5 s
        after = await wait_for(crashed, "the killed run was never marked Crashed", 3 * HEARTBEAT_SECONDS + 60, every=1)
        detected = time.monotonic() - killed_at
        assert after.state.type is StateType.CRASHED, after.state_name
        assert "no heartbeat" in (after.state.message or ""), f"crashed by the automation: {after.state.message}"
        print(f"crashed {detected:.0f} s after the kill")

        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: HEARTBEAT_SECONDS}):  # the stack's beat
            early = await status_check(probe=False)
            assert early["resubmitted"] == [], "a run marked Crashed for its silence must stay silent a while longer"
            confirm = recovery.confirm_window()
            assert confirm == timedelta(seconds=1.5 * HEARTBEAT_SECONDS)
            silent_since = after.state.timestamp
            await asyncio.sleep(max(0.0, (silent_since + confirm - datetime.now(UTC)).total_seconds()) + 1)
            report = await status_check(probe=False)
            again = await status_check(probe=False)
        successors = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"resubmits:{run.id}"]))
        )
        assert len(successors) == 1, [str(s.id) for s in successors]
        new_id = str(successors[0].id)
        assert new_id in report["resubmitted"] and new_id not in again["resubmitted"], "submitted again exactly once"
        old = await client.read_flow_run(run.id)
        assert old.state.name == "Resubmitted" and new_id in old.state.message, (old.state_name, old.state.message)

        own_workers(**heartbeat)  # a worker again: it runs the new run
        finished = await wait_final(new_id, timeout=180)
        assert finished.state.is_completed(), f"{finished.state_name}: {finished.state.message}"
        assert finished.parameters == run.parameters
        history = [s.name for s in await client.read_flow_run_states(run.id)]
        assert history.count("Running") == 1 and "Completed" not in history, history
        assert [s.name for s in await client.read_flow_run_states(new_id)].count("Running") == 1

    persisted = set(storage.glob("aios-answer-*")) - persisted_before
    answered = [r for r in emulator.requests() if r.get("status") == 200]
    assert len(persisted) == 1, f"{len(persisted)} answers persisted for one occurrence"
    assert len(answered) == len(persisted), f"the model was paid {len(answered)} times for {len(persisted)} persisted answer"
    hung = [r for r in emulator.requests("anthropic") if r["mode"] == "hang"]
    assert len(hung) == 1 and hung[0]["status"] is None, "the killed call never got an answer to pay for"
    store = open_store(skill="weekly-report")
    assert store.get("runs", new_id) is None, "the occurrence's record lives under its first run"
    record = store.get("runs", str(run.id))
    assert record is not None and record.data["run_id"] == new_id, "the killed run never wrote a record"
    assert record.data["status"] == "completed" and record.version == 1
    # A killed worker is not a provider outage: no alert is about it, and none is sent twice. (A health change
    # the session's own scheduled status check saw meanwhile, e.g. a probe slowed by a loaded machine, may
    # alert once: seen in a full run beside a soak.)
    sent = [json.dumps(a, sort_keys=True) for a in alert_inbox]
    assert all(a.get("title") in ("aios: provider health changed", "aios: recovered") for a in alert_inbox), sent
    assert not any(word in body for body in sent for word in (str(run.id), new_id, "weekly-report", "crash", "Crash")), sent
    assert len(sent) == len(set(sent)), f"an alert doubled: {sent}"
