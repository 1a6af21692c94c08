"""The Prefect server restarted while runs are parked and `aios drain` is draining them: nothing is lost,
nothing runs twice (Prefect's states, the emulators' request log and the state records agree)."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType

from aios.config.settings import get_settings
from aios.drill.stack import spawn
from aios.outage import deferral
from aios.skills.loader import find_skill
from aios.state import open_store
from tests.flows.test_durable import Occurrence, wait_final

pytestmark = pytest.mark.e2e

PARKED = 6


@pytest.fixture
def drainer_only(deployed):
    """No process worker polls the pool while the test runs (the drainer alone takes the parked runs);
    the session's worker is back afterwards, on the restarted server."""
    session_workers = sum(p.name.startswith("worker") for p in deployed.processes)
    deployed.stop_workers()
    yield deployed
    if session_workers:
        deployed.start_workers(session_workers)


def start_drain(stack, name: str):
    return spawn(name, [sys.executable, "-m", "aios.cli", "drain", "--concurrency", "2"], stack.env, stack.project, stack.workdir)


async def test_restarting_the_prefect_server_loses_no_parked_run_and_runs_none_twice(drainer_only, emulator):
    stack = drainer_only
    skill = find_skill(get_settings().skills_dir, "weekly-report")
    tag = uuid4().hex[:6]
    await deferral.set_paused(True)
    ids = [await deferral.park_run(skill, {"week": f"restart-{tag}-{i}"}, Occurrence()) for i in range(PARKED)]
    await deferral.set_paused(False)
    emulator.set_fault("anthropic", "slow", delay=3.0)  # runs are mid-call when the server goes away

    drain = start_drain(stack, f"drain-{tag}")
    deadline = time.monotonic() + 120
    while not emulator.requests("anthropic") and time.monotonic() < deadline:
        assert drain.proc.poll() is None, drain.log.read_text()[-3000:]
        await asyncio.sleep(0.2)
    assert emulator.requests("anthropic"), "the drainer never asked Claude"
    down = datetime.now(UTC)
    stack.restart_prefect()  # same port, same PostgreSQL database
    up = datetime.now(UTC)
    try:
        drain.proc.wait(300)
    finally:
        drain.stop()
    output = drain.log.read_text()
    assert drain.proc.returncode == 0, f"`aios drain` exited {drain.proc.returncode} on a server restart:\n{output[-3000:]}"
    assert f"drained {PARKED} run(s): {PARKED} completed" in output, output[-3000:]
    assert "/aios/" not in "".join(line for line in output.splitlines() if line.lstrip().startswith("File ")), (
        "no traceback through aios's code (Prefect's own observers log theirs while the server is away)"
    )
    runs = [await wait_final(i, timeout=60) for i in ids]
    assert [r.state.type for r in runs] == [StateType.COMPLETED] * PARKED, [(str(r.id), r.state_name, r.state.message) for r in runs]
    across, after = 0, 0  # runs in flight while the server was away; runs still parked then
    async with get_client() as client:
        for run_id in ids:
            states = await client.read_flow_run_states(run_id)
            history = [s.name for s in states]
            assert history.count("Running") == 1 and history.count("Completed") == 1, (run_id, history)
            started = next(s.timestamp for s in states if s.name == "Running")
            ended = next(s.timestamp for s in states if s.name == "Completed")
            across += started < down and ended > up
            after += started > up
    assert across and after, f"{across} run(s) in flight across the restart, {after} started after it"
    answered = [r for r in emulator.requests("anthropic") if r.get("status") == 200]
    assert len(answered) == PARKED, f"{len(answered)} paid answers for {PARKED} parked runs"
    store = open_store(skill="weekly-report")
    for run_id in ids:
        record = store.get("runs", run_id)
        assert record is not None and record.data["status"] == "completed" and record.version == 1, (run_id, record)
    print(f"server away {(up - down).total_seconds():.0f} s; {across} run(s) in flight across it, {after} after")
