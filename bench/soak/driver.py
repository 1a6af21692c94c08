"""The soak driver: a stack, a stream of skill runs, a fault schedule, killed processes, then the audit.

Runs go in as deployment runs (a distinct soak id in one input of each, see audit.SOAK_FIELD) into the pool's `default` queue. Two soak
drainer processes (bench/soak/executor.py: in-process, and aios's `drain_deferred` for the deferred
queue) and one Prefect process worker (`--limit 2`) race to claim them. The status-check flow runs
every `check_seconds` in the driver, as its schedule would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.soak import audit as auditor
from bench.soak.costs import Costs, run_latencies
from bench.soak.schedule import LLM_FAULTS, OUTAGE_MODES, STATE_FAULTS, SoakPlan, offered

ROOT = Path(__file__).resolve().parents[2]
SKILLS = {"research-lead": "critical", "weekly-report": "defer", "daily-news": "drop"}
BACKENDS = {"research-lead": "airtable", "daily-news": "sheets"}  # weekly-report: the default JSON store
CLAUDE_API = "Claude API (api.anthropic.com)"
SPREADSHEET, BASE = "soak-sheet", "appSoakBase0001"
CANARIES = {  # accepted by the emulators, so they travel every real code path
    "anthropic": "sk-ant-api03-SOAKCANARYanthropic0000000000000000",
    "openai": "sk-proj-SOAKCANARYopenai00000000000000000000",
    "airtable": "patSOAKCANARYairtable.000000000000000000000000",
    "sheets": "ya29.SOAKCANARYsheets0000000000000000000000",
}
# The LLM emulator keeps its last 10,000 requests; a soak makes about one a second (answers, retries,
# memory extraction, probes), so a pull every 30 s loses none, and each pull moves the whole log.
TAP_SECONDS = 30.0
HEARTBEAT_SECONDS = 30  # Prefect's minimum: a killed process's Running runs are Crashed ~90 s later
log = logging.getLogger("aios.soak")


@dataclass
class SoakConfig:
    runs: int = 1000
    seed: int = 1
    outages: int = 4
    outage_seconds: tuple[float, float] = (5.0, 60.0)
    kills_every: int = 100
    max_backlog: int = 16  # submitted runs waiting in the queue at most: as many as the drainers' slots
    submit_seconds: float = 1.0  # how often the driver tops the backlog up
    drainers: int = 2
    drainer_concurrency: int = 8  # runs at once per drainer: most of a run is waiting (timeouts, retry-after)
    process_workers: int = 1
    # A process worker's run costs ~10 CPU-seconds (the worker, Prefect's workspace supervisor and the engine
    # are each a Python process) against ~0.3 s in a drainer: one run at a time, polled every 5 s, keeps it
    # racing the drainers for the same runs and holding runs to be killed, at a few percent of the runs.
    worker_limit: int = 1
    worker_query_seconds: float = 5.0
    check_seconds: float = 10.0  # the status check (with its probes) every 10 s: its 1-minute schedule, sped up
    tick_seconds: float = 0.5  # how often a new per-request LLM fault is put on a random model
    settle_seconds: float = 1800.0  # at most, after the last submission (a stuck soak ends by the stall rule in drive)
    database_prefix: str = "aios_soak_"  # its own database <prefix><pid>, dropped at the end (and orphans of dead soaks)
    verbose: bool = True


class Sink:
    """A local receiver for Apprise json:// alerts and OTLP/HTTP exports (kept raw, for the canary search)."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.bodies: dict[str, list[bytes]] = {"spans": [], "metrics": []}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path.startswith("/alerts"):
                    sink.alerts.append(json.loads(body or b"{}"))
                else:
                    sink.bodies["spans" if "traces" in self.path else "metrics"].append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def soak_environment(sink: Sink) -> dict[str, str]:
    """Settings for every process of the soak (set before the stack starts, so all inherit them)."""
    return {
        "AIOS_MEMORY_EXTRACTION": "true",
        # Probes stay on (the default): a model marked down is skipped, so only a probe can see it recover.
        # The audit tells them apart from the runs' calls by the schema they ask for.
        "AIOS_CONNECT_TIMEOUT": "1",
        "AIOS_READ_TIMEOUT": "3",
        # Probes time out like the runs' calls (default 5 s): a status check probes its targets one by one,
        # so a few hung models would hold each check (every 10 s) for 10-25 s.
        "AIOS_PROBE_TIMEOUT": "3",
        "AIOS_BREAKER_COOLDOWN": "5",
        "AIOS_STUCK_PENDING_SECONDS": "60",  # a claim the killed worker held: resubmitted after 1 min, not 5
        "AIOS_ALERT_URLS": f"json://{sink.url.removeprefix('http://')}/alerts",
        "AIOS_STATE_SKILL_BACKENDS": json.dumps(BACKENDS),
        "AIOS_STATE_RETRY_MAX_TOTAL": "3",
        "AIOS_STATE_RETRY_INITIAL_DELAY": "0.2",
        "AIOS_STATE_RETRY_MAX_DELAY": "1",
        "AIOS_STATE_PROBE_INTERVAL": "2",
        "AIOS_STATE_HTTP_TIMEOUT": "5",
        "AIOS_STATE_SHEETS_SPREADSHEET": SPREADSHEET,
        "AIOS_STATE_SHEETS_TOKEN": CANARIES["sheets"],
        "AIOS_STATE_AIRTABLE_BASE_ID": BASE,
        "AIOS_STATE_AIRTABLE_TOKEN": CANARIES["airtable"],
        "AIOS_EMU_SHEETS_TOKENS": CANARIES["sheets"],
        "AIOS_EMU_AIRTABLE_TOKENS": CANARIES["airtable"],
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


class Chaos:
    """Puts faults on the emulators from the fault tables and the plan; kills and restarts processes."""

    def __init__(self, stack, config: SoakConfig, plan: SoakPlan, costs: Costs) -> None:
        from aios.emulators.control import EmulatorControl
        from aios.emulators.faults import MODES
        from aios.config.settings import get_settings

        self.stack, self.config, self.plan, self.costs = stack, config, plan, costs
        self.rng = random.Random(config.seed * 7919)
        self.control = EmulatorControl(stack.emulator_url)
        self.llm_faults, missing = offered(LLM_FAULTS, set(MODES))
        self.outage_modes = [m for m in OUTAGE_MODES if m in MODES]
        self.missing = sorted(set(missing) | {m for m in OUTAGE_MODES if m not in MODES})
        self.targets = [(t.provider, t.model) for t in get_settings().policy().targets]
        self.claude_down_until = 0.0
        self.kills: Counter = Counter()  # SIGKILLed processes by kind (drainer, worker)
        self.restarts = 0  # Prefect server restarts
        self.rotation = 0

    def log(self, msg: str) -> None:
        if self.config.verbose:
            print(f"  [{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {msg}", flush=True)

    def llm_tick(self) -> None:
        """One per-request fault on one random model (a model rule beats an outage's '*' rule for its few requests)."""
        mode, _, params = self.rng.choices(self.llm_faults, weights=[w for _, w, _ in self.llm_faults])[0]
        provider, model = self.rng.choice(self.targets)
        if self.rng.random() < 0.05:  # a per-model outage: until the next tick on that model
            self.control.set_fault(provider, self.rng.choice(["overloaded", "unavailable"]), model=model, times=40)
        else:
            self.control.set_fault(provider, mode, model=model, times=self.rng.randint(1, 3), **params)

    def state_tick(self) -> float | None:
        """One state-backend fault on Sheets or Airtable; returns how long a `down` lasts (cleared by the caller)."""
        mode, _, params = self.rng.choices(STATE_FAULTS, weights=[w for _, w, _ in STATE_FAULTS])[0]
        which = self.rng.choice(["sheets", "airtable"])
        body = {"mode": mode, **{k: v for k, v in params.items() if k != "seconds"}}
        httpx.put(f"{self.stack.emulator_url}/{which}/_control/faults", json=body, timeout=5)
        if "seconds" in params:
            seconds = self.rng.uniform(*params["seconds"])
            self.log(f"{which} down for {seconds:.0f} s")
            return seconds
        return None

    def clear_state_faults(self) -> None:
        for which in ("sheets", "airtable"):
            httpx.delete(f"{self.stack.emulator_url}/{which}/_control/faults", timeout=5)

    def claude_down(self, outage) -> None:
        if outage.announced:
            self.control.set_status(
                "claude", components={CLAUDE_API: "major_outage"},
                incidents=[{"name": "Elevated errors on the Claude API", "status": "investigating", "impact": "critical", "components": [CLAUDE_API]}],
            )
        self.control.set_fault("anthropic", outage.mode, delay=6.0 if outage.mode == "hang" else None)
        self.claude_down_until = time.monotonic() + outage.seconds
        self.log(f"Claude down ({outage.mode}, {'announced' if outage.announced else 'unannounced'}) for {outage.seconds:.0f} s")

    def claude_up(self) -> None:
        self.control.clear_status()
        self.control.clear_faults("anthropic", "*")
        self.claude_down_until = 0.0
        self.log("Claude back")

    def kill_one(self) -> None:
        """SIGKILL the process worker and a drainer in turn (the oldest one of its kind), with the runs it
        is executing, and start a new one."""
        kinds = ("worker", "soak-drainer")
        kind = kinds[self.rotation % 2]
        self.rotation += 1
        victims = [p for p in self.stack.processes if p.name.startswith(kind)] or [
            p for p in self.stack.processes if p.name.startswith(kinds)
        ]
        if not victims:
            return
        victim = victims[0]
        self.costs.charge(cost_kind(victim.name), victim.proc.pid)
        for pid in freeze_tree(victim.proc.pid):  # a worker's flow-run processes may sit in sessions of their own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        self.stack.processes.remove(victim)
        self.kills["worker" if victim.name.startswith("worker") else "drainer"] += 1
        self.log(f"SIGKILLed {victim.name}")
        if victim.name.startswith("worker"):
            self.stack.start_workers(1, limit=self.config.worker_limit)
        else:
            start_drainers(self.stack, 1, self.config.drainer_concurrency)

    def clear_all(self) -> None:
        self.control.clear_faults()
        self.control.clear_status()
        self.clear_state_faults()


def freeze_tree(pid: int) -> list[int]:
    """SIGSTOP a process and everything below it, until no new process shows up; returns them all.

    Killing from one snapshot of the tree misses a process started after the snapshot (a worker's
    supervisor starting the flow-run engine just then), which would then run its flow on, unkilled.
    A stopped process starts nothing, so once a pass finds no new one the tree is complete.
    """
    from aios.drill.stack import descendants

    stopped: list[int] = []
    while new := [p for p in [pid, *descendants(pid)] if p not in stopped]:
        for p in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGSTOP)
            stopped.append(p)
    return stopped


def cost_kind(process_name: str) -> str:
    """The kind of a stack process, as the CPU figures name it."""
    for prefix, kind in (("soak-drainer", "drainers"), ("worker", "process workers (with their flow processes)"), ("prefect-server", "Prefect server")):
        if process_name.startswith(prefix):
            return kind
    return process_name


def start_drainers(stack, count: int, concurrency: int) -> None:
    from aios.drill.stack import spawn

    for _ in range(count):
        n = sum(1 for p in stack.processes if p.name.startswith("soak-drainer"))
        stack.processes.append(
            spawn(f"soak-drainer-{n}-{time.monotonic_ns() % 10_000}", [sys.executable, "-m", "bench.soak.executor", "--concurrency", str(concurrency)], stack.env, ROOT, stack.workdir)
        )


async def _count(client, types: list[str], queue: str | None = None, name: str | None = None) -> int:
    """Skill runs in these states (in `queue` only, if given: parked runs in a paused queue are not backlog;
    with this state name only, if given)."""
    from prefect.client.schemas.filters import (
        FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateName, FlowRunFilterStateType,
        WorkQueueFilter, WorkQueueFilterName,
    )

    state = FlowRunFilterState(type=FlowRunFilterStateType(any_=types), name=FlowRunFilterStateName(any_=[name]) if name else None)
    return await client.count_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=list(SKILLS))),
        flow_run_filter=FlowRunFilter(state=state),
        work_queue_filter=WorkQueueFilter(name=WorkQueueFilterName(any_=[queue])) if queue else None,
    )


async def soak_deployments(client) -> dict[str, Any]:
    """The deployment each skill's soak runs go to: the skill's own, or for a skill deployed as a records
    flow (research-lead works on lead records), a `soak` deployment of its one-answer skill flow -- the
    soak submits runs with inputs, which only the skill flow takes."""
    from flows.skill_flow import skill_flows

    ids = {}
    for skill in SKILLS:
        own = await client.read_deployment_by_name(f"{skill}/{skill}")
        entrypoint = f"flows/skills.py:{skill.replace('-', '_')}"
        if own.entrypoint == entrypoint:
            ids[skill] = own.id
            continue
        ids[skill] = await client.create_deployment(
            flow_id=own.flow_id, name="soak", entrypoint=entrypoint, path=own.path, work_pool_name=own.work_pool_name,
            work_queue_name="default", tags=own.tags, pull_steps=own.pull_steps, enforce_parameter_schema=True,
            parameter_openapi_schema=skill_flows()[skill].parameters.model_dump_for_openapi(),
        )
    return ids


async def drive(stack, config: SoakConfig, plan: SoakPlan, chaos: Chaos, tap: auditor.RequestTap) -> None:
    from prefect.client.orchestration import get_client

    from aios.skills.loader import find_skill, load_skills  # noqa: F401
    from flows.status_check import status_check

    rng = random.Random(config.seed)
    stop = asyncio.Event()

    async def every(seconds: float, fn, name: str) -> None:
        while not stop.is_set():
            try:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - the chaos must go on (e.g. while the server restarts)
                log.warning("%s: %s: %s", name, type(exc).__name__, exc)
            await pause(seconds)

    async def pause(seconds: float) -> None:
        """Sleep, but wake when the chaos stops (so a status check is never cancelled half-way: it would
        leave a Crashed status-check run and a sweep cut short)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def state_chaos() -> None:
        while not stop.is_set():
            try:
                down = await asyncio.to_thread(chaos.state_tick)
                if down:
                    await pause(down)
                    await asyncio.to_thread(chaos.clear_state_faults)
            except Exception as exc:  # noqa: BLE001
                log.warning("state chaos: %s", exc)
            await pause(rng.uniform(2, 5))

    def outage_over() -> None:
        if chaos.claude_down_until and time.monotonic() > chaos.claude_down_until:
            chaos.claude_up()

    background = [
        asyncio.create_task(every(config.check_seconds, lambda: status_check(), "status-check")),
        asyncio.create_task(every(config.tick_seconds, lambda: asyncio.to_thread(chaos.llm_tick), "llm chaos")),
        asyncio.create_task(every(1.0, outage_over, "outages")),
        asyncio.create_task(every(TAP_SECONDS, lambda: asyncio.to_thread(tap.pull), "request tap")),
        asyncio.create_task(state_chaos()),
    ]
    outages = sorted(plan.outages, key=lambda o: o.at_run)
    submitted = 0
    restarted = False
    ids = auditor.soak_ids(config.seed, plan.runs)
    names = list(SKILLS)
    skill_of = [names[rng.randrange(len(names))] for _ in ids]  # fixed per run: a retried submission is the same run
    async with get_client() as client:
        deployments = await soak_deployments(client)
        while submitted < plan.runs:
            try:
                backlog = await _count(client, ["SCHEDULED", "PENDING"], queue="default")
            except Exception:  # noqa: BLE001 - server restarting
                await asyncio.sleep(1)
                continue
            for _ in range(max(0, min(config.max_backlog - backlog, plan.runs - submitted))):
                sid, skill = ids[submitted], skill_of[submitted]
                try:
                    await client.create_flow_run_from_deployment(
                        deployments[skill], parameters={"inputs": auditor.soak_inputs(skill, sid)}, idempotency_key=f"soak:{sid}", tags=["soak"]
                    )
                except Exception as exc:  # noqa: BLE001 - retried with the same idempotency key
                    log.warning("submit %s: %s", sid, type(exc).__name__)
                    await asyncio.sleep(1)
                    break
                submitted += 1
                if outages and submitted >= outages[0].at_run:
                    chaos.claude_down(outages.pop(0))
                if (submitted + plan.kills_every // 2) % plan.kills_every == 0:  # half-way between hundreds: 50, 150, ...
                    chaos.kill_one()
                if submitted % 100 == 0 or submitted == plan.runs:
                    chaos.log(f"{submitted} runs submitted")
                if not restarted and submitted >= plan.restart_at:
                    restarted = True
                    chaos.log("restarting the Prefect server")
                    chaos.costs.charge("Prefect server", next(p for p in stack.processes if p.name == "prefect-server").proc.pid)
                    await asyncio.to_thread(stack.restart_prefect)
                    chaos.restarts += 1
                    chaos.log("Prefect server back")
                    break
            await asyncio.sleep(config.submit_seconds)

        # Recovery: faults off, the status check sees Claude healthy, the deferred queue drains.
        chaos.costs.mark("submission")
        chaos.log("all submitted; recovering")
        if chaos.claude_down_until:
            await asyncio.sleep(max(0.0, chaos.claude_down_until - time.monotonic()))
            chaos.costs.mark("the last outage's end")
        stop.set()
        chaos.clear_all()  # first, so a status check still probing finishes fast (its probes stop timing out)
        await asyncio.gather(*background)
        chaos.clear_all()  # and what a tick in flight put on meanwhile
        chaos.claude_up()
        for _ in range(30):
            try:
                report = await status_check()
                if report["claude_healthy"]:
                    break
            except Exception as exc:  # noqa: BLE001
                log.warning("status-check: %s", exc)
            await asyncio.sleep(1)
        chaos.costs.mark("status checks until Claude is healthy")
        from aios.outage.recovery import stuck_pending

        zombie_window = 3 * HEARTBEAT_SECONDS + 15  # deployments/automation.py: 3 heartbeats, + the trigger's evaluation lag
        deadline = time.monotonic() + config.settle_seconds
        last, steady_since, next_check, next_pull = None, time.monotonic(), time.monotonic() + config.check_seconds, 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_check:  # the status check also resubmits crashed and stuck runs
                next_check = time.monotonic() + config.check_seconds
                try:
                    if (await status_check())["resubmitted"]:
                        steady_since = time.monotonic()
                except Exception as exc:  # noqa: BLE001
                    log.warning("status-check: %s", exc)
            scheduled = await _count(client, ["SCHEDULED"])
            pending = await _count(client, ["PENDING"])
            running = await _count(client, ["RUNNING"])
            # Crashed and not yet submitted again: a silence the sweep confirms a while later (aios/outage/recovery.py)
            running += await _count(client, ["CRASHED"], name="Crashed")
            waiting = scheduled + pending
            if time.monotonic() >= next_pull:
                await asyncio.to_thread(tap.pull)
                next_pull = time.monotonic() + TAP_SECONDS
            if (scheduled, pending, running) != last:
                last, steady_since = (scheduled, pending, running), time.monotonic()
                chaos.log(f"settling: {scheduled} scheduled, {pending} pending, {running} running")
            # Done, or stuck for longer than aios's recovery takes to notice a run a killed process held:
            # Running ones are marked Crashed when their heartbeats stop, Pending ones resubmitted after
            # stuck_pending(); the status check then submits them again. What still hangs after that is lost.
            stall = (stuck_pending().total_seconds() if waiting else zombie_window) + 3 * config.check_seconds
            if (waiting, running) == (0, 0) or time.monotonic() - steady_since > stall:
                break
            await asyncio.sleep(2)
        chaos.costs.mark("settle")


def run_soak(config: SoakConfig) -> auditor.SoakReport:
    """Start everything, drive the load under the fault schedule, recover, audit. Returns the report."""
    from aios.config.bootstrap import prepare_environment

    prepare_environment()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from aios.config.runtime import reset_runtime
    from aios.config.settings import reload_settings
    from aios.drill.stack import LocalStack, session_database
    from aios.state import clear_store_cache

    logging.getLogger("prefect").setLevel(logging.ERROR)
    from aios.emulators.faults import MODES

    plan = SoakPlan.draw(config.seed, config.runs, config.outage_seconds, config.outages, [m for m in OUTAGE_MODES if m in MODES])
    plan.kills_every = config.kills_every
    costs = Costs()
    sink = Sink()
    saved = dict(os.environ)
    os.environ.update(soak_environment(sink))
    try:
        with session_database(config.database_prefix) as db, LocalStack(
            project=ROOT, database_url=db, scheduler=False, worker_query_seconds=config.worker_query_seconds
        ) as stack:
            stack.env.update({
                "ANTHROPIC_API_KEY": CANARIES["anthropic"],
                "OPENAI_API_KEY": CANARIES["openai"],
                "AIOS_STATE_SHEETS_API_URL": f"{stack.emulator_url}/sheets",
                "AIOS_STATE_AIRTABLE_API_URL": f"{stack.emulator_url}/airtable",
                "PYTHONPATH": str(ROOT),
                # LocalStack passes no PREFECT_* setting of ours on; `aios deploy` sizes the zombie automation to it
                "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
                # Results (cached paid answers, keyed by occurrence = the soak id) in the stack's own folder, not
                # the project's .aios/results: a soak with the same seed found the last one's answers there, and
                # paid (and was faulted) less -- its paid-call figures and its speed were not its own.
                "PREFECT_LOCAL_STORAGE_PATH": str(stack.workdir / "results"),
            })
            stack.run("deploy", timeout=300)
            os.environ.update(stack.env)
            reload_settings()
            reset_runtime()
            clear_store_cache()
            with temporary_settings(updates={PREFECT_API_URL: stack.api_url}):
                chaos = Chaos(stack, config, plan, costs)
                tap = auditor.RequestTap(stack.emulator_url)
                costs.mark("stack start, deploy")
                start_drainers(stack, config.drainers, config.drainer_concurrency)
                stack.start_workers(config.process_workers, limit=config.worker_limit)
                started = time.monotonic()
                asyncio.run(drive(stack, config, plan, chaos, tap))
                wall = time.monotonic() - started
                latencies = run_latencies(asyncio.run(auditor._all_flow_runs(list(SKILLS))))
                for p in stack.processes:
                    costs.charge(cost_kind(p.name), p.proc.pid)
                costs.charge_postgres(db.rsplit("/", 1)[1])
                for p in [p for p in stack.processes if p.name.startswith(("soak-drainer", "worker"))]:
                    p.stop()
                    stack.processes.remove(p)
                from aios.state.journal import sync

                for backend in ("sheets", "airtable"):
                    try:
                        sync(backend=backend)
                    except Exception as exc:  # noqa: BLE001 - what is left shows in the audit
                        log.warning("journal sync %s: %s", backend, exc)
                costs.mark("stop, journal sync")
                report = asyncio.run(
                    auditor.audit(
                        seed=config.seed, runs=config.runs, skills=SKILLS, emulator_url=stack.emulator_url,
                        spreadsheet=SPREADSHEET, base=BASE, workdir=stack.workdir, skills_dir=ROOT / "skills",
                        tap=tap, alerts=sink.alerts, sink_bodies=sink.bodies, canaries=CANARIES, outages=config.outages,
                    )
                )
                report.wall_seconds = wall
                costs.mark("audit")
                report.notes += costs.lines(config.runs) + latencies
                if any(report.zero_lines.values()):
                    report.notes.append(f"the stack's files (logs, state, journal, memory) are kept in {stack.workdir}")
                else:
                    stack.cleanup()
                report.kills, report.restarts = dict(chaos.kills), chaos.restarts
                report.notes.append(f"SIGKILLed {dict(chaos.kills)}; {chaos.restarts} Prefect server restart(s) at run {plan.restart_at}")
                if chaos.missing:
                    report.notes.append(f"fault modes in the table the emulator does not offer (not sent): {', '.join(chaos.missing)}")
                return report
    finally:
        sink.close()
        os.environ.clear()
        os.environ.update(saved)
        reload_settings()
        reset_runtime()
