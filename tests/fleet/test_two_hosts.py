"""Two workers as two hosts against one PostgreSQL-backed Prefect server.

Each host has its own directory and AIOS_HOME, empty until the deployment's pull step (`git_clone` of a
bare repository made from this project) puts the code there. They share the server and what a fleet must
share (`aios doctor`'s fleet row): one Airtable base (the emulator) for run records, health and alert
bursts, and Redis for breakers. A status check on host A marks Claude down, a critical run on host B
skips Claude without calling it, runs parked on both hosts are drained once each after recovery, and
each change alerts exactly once.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
import redis
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

from aios.outage import deferral, health_store
from aios.runs.record import RUNS_TABLE
from aios.drill.stack import spawn
from aios.outage.breaker_store import REDIS_PREFIX
from aios.state import clear_store_cache, open_store
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

CLAUDE_API = "Claude API (api.anthropic.com)"
BREAKERS = "redis://127.0.0.1:6379/11"  # a database of its own: other tests use 0


def forget_breakers() -> None:
    client = redis.Redis.from_url(BREAKERS)
    if names := list(client.scan_iter(match=REDIS_PREFIX + "*")):
        client.delete(*names)


def git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


class Host:
    """One machine: its own directory, AIOS_HOME, state journal and memory; a worker started on demand."""

    def __init__(self, name: str, base: Path, env: dict[str, str]) -> None:
        self.name, self.dir = name, base / name
        self.dir.mkdir()
        self.home = self.dir / "aios"  # where the pull step clones the project
        self.env = {
            **env,
            "AIOS_WORKER_DIR": str(self.dir),
            "AIOS_HOME": str(self.home),
            "AIOS_STATE_JOURNAL_PATH": str(self.dir / "state" / "journal.jsonl"),
            "AIOS_MEMORY_DIR": str(self.dir / "memory"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        }
        self.worker = None

    def start(self) -> None:
        self.worker = spawn(
            f"worker-{self.name}",
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "aios", "--type", "process", "--limit", "2"],
            self.env, self.dir, self.dir.parent,
        )

    def stop(self) -> None:
        if self.worker:
            self.worker.stop()
            self.worker = None


@pytest.fixture
def fleet(stack, emulator, alert_inbox, tmp_path, monkeypatch):
    """A bare repository of this project, deployments that clone it, a shared Airtable base and Redis, and two
    hosts; the usual deployments after."""
    origin = tmp_path / "origin.git"
    git("clone", "--bare", "--quiet", str(ROOT), str(origin))
    deployer = tmp_path / "deployer"
    git("clone", "--quiet", str(origin), str(deployer))
    airtable = f"{stack.emulator_url}/airtable"
    base = "app" + uuid4().hex[:14]
    httpx.put(f"{airtable}/_control/bases/{base}", json={"tables": []}, timeout=10).raise_for_status()
    shared = {
        "AIOS_FLEET": "multi",
        "AIOS_STATE_BACKEND": "airtable",
        "AIOS_STATE_AIRTABLE_BASE_ID": base,
        "AIOS_STATE_AIRTABLE_TOKEN": "emulator-token",
        "AIOS_STATE_AIRTABLE_API_URL": airtable,
        "AIOS_BREAKER_REDIS_URL": BREAKERS,
    }
    forget_breakers()
    env = {
        **{k: v for k, v in stack.env.items() if k != "AIOS_STATE_PATH"},
        **shared,
        "AIOS_ALERT_URLS": alert_inbox_url(),
        "AIOS_MEMORY_EXTRACTION": "false",
        "AIOS_DEPLOY_REPOSITORY": f"file://{origin}",
        "AIOS_DEPLOY_DIRECTORY": "{{ $AIOS_WORKER_DIR }}",
    }
    deploy = subprocess.run(
        [sys.executable, "-m", "aios.cli", "deploy", "--write"],
        env={**env, "AIOS_HOME": str(deployer)}, cwd=deployer, capture_output=True, text=True, timeout=300,
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    for name, value in shared.items():  # this process reads the hosts' shared store
        monkeypatch.setenv(name, value)
    clear_store_cache()
    # Only the two hosts may poll the pool: a session worker (other tests' `deployed`) has no AIOS_WORKER_DIR.
    session_workers = sum(p.name.startswith("worker") for p in stack.processes)
    stack.stop_workers()
    hosts = [Host("host-a", tmp_path, env), Host("host-b", tmp_path, env)]
    yield hosts
    for host in hosts:
        host.stop()
    if session_workers:
        stack.start_workers(1)
    forget_breakers()
    for name in shared:
        monkeypatch.delenv(name)
    clear_store_cache()
    asyncio.run(deferral.set_paused(False))
    stack.run("deploy", timeout=300)  # the session's other tests use the project's own deployments


def alert_inbox_url() -> str:
    """The `alert_inbox` receiver (that fixture sets it in this process's environment)."""
    import os

    return os.environ["AIOS_ALERT_URLS"]


async def run_on_fleet(name: str, timeout: float = 180, **parameters):
    """Run a deployment through whichever worker is up; its final flow run."""
    flow_run = await run_deployment(name, parameters=parameters or None, timeout=timeout)
    assert flow_run.state and flow_run.state.is_final(), f"{name} did not finish in {timeout} s"
    return flow_run


async def wait_final(ids: list[str], timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            runs = {i: await client.read_flow_run(i) for i in ids}
            if all(r.state and r.state.is_final() for r in runs.values()):
                return runs
            await asyncio.sleep(1)
    raise AssertionError(f"parked runs not drained within {timeout} s: {[r.state_name for r in runs.values()]}")


async def completions(flow_run_id: str) -> int:
    async with get_client() as client:
        return sum(1 for s in await client.read_flow_run_states(flow_run_id) if s.type.value == "COMPLETED")


async def test_two_hosts_share_health_park_drain_and_alert_once(fleet, emulator, alert_inbox):
    host_a, host_b = fleet

    # Host A: its status check sees Claude down; it parks a deferred run.
    host_a.start()
    emulator.set_status("claude", components={CLAUDE_API: "major_outage"},
                        incidents=[{"name": "Elevated errors on the Claude API", "status": "investigating", "impact": "critical", "components": [CLAUDE_API]}])
    emulator.set_fault("anthropic", "overloaded")
    check = await run_on_fleet("status-check/status-check")
    assert check.state.is_completed(), check.state.message
    assert (host_a.home / ".git").is_dir() and (host_a.home / "skills").is_dir(), "the pull step cloned the project on host A"
    assert not host_b.home.exists()
    assert health_store.read_snapshot().provider("anthropic").value == "down", "host A's verdict is on the server"
    parked_a = await run_on_fleet("weekly-report/weekly-report", inputs={"week": "fleet-a"})
    assert parked_a.state.name == "Deferred", parked_a.state.message
    host_a.stop()

    # Host B never ran a status check, yet skips Claude: no request reaches the Anthropic API.
    host_b.start()
    emulator.clear_requests()
    from aios.drill.samples import seed_sample_records

    # research-lead works on host B's own leads (a records skill): one lead, every step answered by OpenAI
    seed_sample_records(ROOT / "skills", open_store())
    lead = next(iter(open_store().list("leads")))
    critical = await run_on_fleet("research-lead/research-lead", record=lead.key)
    assert critical.state.is_completed() and critical.state.name == "Completed", critical.state.message
    assert critical.state.message == "1 written", critical.state.message
    assert emulator.requests("anthropic") == [] and emulator.requests("openai"), "Claude skipped, OpenAI answered"
    assert (host_b.home / ".git").is_dir(), "the pull step cloned the project on host B"
    parked_b = await run_on_fleet("weekly-report/weekly-report", inputs={"week": "fleet-b"})
    assert parked_b.state.name == "Deferred", parked_b.state.message

    # Recovery, decided on host B from the history host A wrote; then both hosts drain the queue.
    emulator.clear_status()
    emulator.clear_faults()
    for _ in range(2):  # AIOS_HEALTH_RECOVER_AFTER=2 healthy checks
        assert (await run_on_fleet("status-check/status-check")).state.is_completed()
    assert await deferral.is_paused() is False
    host_a.start()
    runs_of = {r.key: r.data for r in open_store().list(RUNS_TABLE)}
    parked = [runs_of[str(parked_a.id)]["parked_run_id"], runs_of[str(parked_b.id)]["parked_run_id"]]
    runs = await wait_final(parked)
    assert all(r.state.is_completed() for r in runs.values()), [r.state_name for r in runs.values()]
    runs_of = {r.key: r.data for r in open_store().list(RUNS_TABLE)}
    for run_id in parked:
        assert await completions(run_id) == 1, "drained once"
        assert runs_of[run_id]["status"] == "completed", "its record is in the store both hosts share"

    titles = [a.get("title") for a in alert_inbox]
    assert titles == ["aios: provider health changed", "aios: recovered"], alert_inbox
