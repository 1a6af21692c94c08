"""The drill's moves against a running stack: reset, cut Claude off, run status checks and every skill,
bring Claude back, wait for the parked runs, and record what each skill did against its triage class.

The drill runs against an isolated local stack (its own Prefect server, worker and emulators), so it
never parks or pauses anything on the user's production server. Offline, both providers are
emulated; with `live=True` the real OpenAI answers and Anthropic is cut off by a black hole.

The status-check flow and the skill and records flow builders are passed in (from `flows/`), so
this package does not depend on the flows that use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aios.core.fallback import Outcome
from aios.core.triage import Triage
from aios.drill.inbox import AlertInbox
from aios.drill.report import ScenarioReport
from aios.runs.record import RunStatus, SkillRun
from aios.skills.loader import Skill

CLAUDE_API = "Claude API (api.anthropic.com)"
DRILL_ENV = {
    "AIOS_CONNECT_TIMEOUT": "1",
    "AIOS_READ_TIMEOUT": "3",
    "AIOS_PROBE_TIMEOUT": "1",
    "AIOS_HEALTH_RECOVER_AFTER": "2",
    "AIOS_MEMORY_EXTRACTION": "false",
}
SLOW_DELAY = 6.0  # seconds: past the drill's read timeout
CLI_READ_TIMEOUT = "60"  # seconds: a CLI run starts a Node (Claude Code) or Rust (Codex) process per call

StatusCheck = Callable[[], Awaitable[dict[str, Any]]]
SkillFlowBuilder = Callable[[str], Any]  # skill name -> a Prefect flow of that skill


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt, so every `with` block unwinds and stops what it
    started. SIGINT is set explicitly: a job started in the background inherits it ignored. Signals that
    arrive while cleaning up are ignored, so a second Ctrl-C cannot cut the cleanup short."""

    def stop(signum: int, frame: object) -> None:
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    saved = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def wait_for_signal() -> None:
    """Block until a stop signal (under `stop_on_signals`) raises KeyboardInterrupt."""
    while True:
        signal.pause()


@dataclass
class Drill:
    """One drill against a running stack (env already pointing at it, deployments and a worker up)."""

    control: object  # EmulatorControl
    skills: list[Skill]
    inbox: AlertInbox
    status_check: StatusCheck
    skill_flow: SkillFlowBuilder
    records_flow: SkillFlowBuilder  # records skill name -> its records flow
    live: bool = False
    progress: Callable[[str], None] = lambda message: None

    # ---- moves ---------------------------------------------------------------------------------
    def reset(self) -> None:
        from aios.outage import health_store
        from aios.config.runtime import reset_runtime
        from aios.config.settings import reload_settings

        self.control.clear_faults()
        self.control.clear_status()
        health_store.forget_health()
        reload_settings()
        reset_runtime()
        self.inbox.received.clear()
        from aios.config.settings import get_settings
        from aios.drill.samples import seed_sample_records

        seed_sample_records(get_settings().skills_dir)  # the sample `leads` (a user's own rows are never touched)

    @contextlib.contextmanager
    def anthropic_black_holed(self) -> Iterator[None]:
        from aios.emulators.blackhole import BlackHole
        from aios.config.runtime import reset_runtime

        saved = os.environ.get("ANTHROPIC_BASE_URL")
        with BlackHole() as hole:
            os.environ["ANTHROPIC_BASE_URL"] = hole.url
            reset_runtime()
            try:
                yield
            finally:
                if saved is None:
                    os.environ.pop("ANTHROPIC_BASE_URL", None)
                else:
                    os.environ["ANTHROPIC_BASE_URL"] = saved
                reset_runtime()

    def missing_clis(self, providers: tuple[str, ...]) -> str | None:
        """Why a scenario that needs these agent CLIs cannot run here (None: it can)."""
        from aios.providers.agent_cli import cli_adapter

        if self.live:
            return "needs the emulators (per-model faults), so it does not run with --live"
        missing = [cli_adapter(p).binary_name for p in providers if cli_adapter(p).binary() is None]
        return f"{' and '.join(missing)} not installed (scripts/install-agent-clis)" if missing else None

    @contextlib.contextmanager
    def agent_cli_chain(self, targets: str) -> Iterator[None]:
        """The chain is `targets`; Codex talks to the emulated Responses API (Claude Code already reads
        ANTHROPIC_BASE_URL); both CLIs get scratch homes, so the user's logins and configs stay untouched."""
        from aios.config.runtime import reset_runtime
        from aios.config.settings import reload_settings

        with tempfile.TemporaryDirectory(prefix="aios-drill-cli-") as scratch:
            env = {
                "AIOS_TARGETS": targets,
                "AIOS_READ_TIMEOUT": CLI_READ_TIMEOUT,
                "AIOS_CODEX_BASE_URL": os.environ["OPENAI_BASE_URL"],
                "HOME": os.path.join(scratch, "home"),
                "CODEX_HOME": os.path.join(scratch, "codex-home"),
            }
            os.mkdir(env["HOME"])
            os.mkdir(env["CODEX_HOME"])
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            reload_settings()
            reset_runtime()
            try:
                yield
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
                reload_settings()
                reset_runtime()

    def outage(self, kind: str) -> contextlib.AbstractContextManager:
        """Cut Claude off: 529s (or a black hole when live), plus a status page that admits it."""
        if self.live or kind == "blackhole":
            return self.anthropic_black_holed()
        self.control.set_status("claude", components={CLAUDE_API: "major_outage"}, incidents=[
            {"name": "Elevated errors on the Claude API", "status": "investigating", "impact": "critical", "components": [CLAUDE_API]}
        ])
        if kind == "slow":
            self.control.set_fault("anthropic", "slow", delay=SLOW_DELAY)
        else:
            self.control.set_fault("anthropic", "overloaded")
        return contextlib.nullcontext()

    async def check_health(self) -> tuple[dict, float]:
        started = time.perf_counter()
        result = await self.status_check()
        return result, (time.perf_counter() - started) * 1000

    async def run_all(self, skills: list[Skill] | None = None) -> dict[str, SkillRun]:
        runs = {}
        for skill in self.skills if skills is None else skills:
            state = await self.skill_flow(skill.name)(return_state=True)
            runs[skill.name] = SkillRun.model_validate(await state.result(raise_on_failure=False))
        return runs

    async def recover(self, report: ScenarioReport) -> None:
        """Bring Claude back and run status checks until the queue resumes (hysteresis included)."""
        self.control.clear_faults()
        self.control.clear_status()
        for _ in range(4):
            result, _ = await self.check_health()
            if result["claude_healthy"]:
                return
        report.check("queue", "resumed after recovery", passed=False, detail="Claude still unhealthy after 4 checks")

    async def drain(self, report: ScenarioReport, parked: dict[str, str], timeout: float = 120) -> None:
        """Wait for every parked run; each must complete once, on Claude."""
        from prefect.client.orchestration import get_client

        from aios.state import open_store

        if not parked:
            return
        started = time.perf_counter()
        pending = set(parked.values())
        async with get_client() as client:
            while pending and time.perf_counter() - started < timeout:
                for run_id in list(pending):
                    fr = await client.read_flow_run(run_id)
                    if fr.state and fr.state.is_final():
                        pending.discard(run_id)
                if pending:
                    await asyncio.sleep(0.5)
        report.time_to_drain_ms = (time.perf_counter() - started) * 1000
        store = open_store()
        for skill, run_id in parked.items():
            record = store.get("runs", run_id)
            ok = record is not None and record.data.get("status") == "completed" and record.data.get("provider") == "anthropic"
            detail = "timed out" if run_id in pending else (f"ended {record.data.get('status')} via {record.data.get('provider')}" if record else "no record")
            report.check(skill, "parked run executed on Claude after recovery", passed=ok, detail=detail, ms=report.time_to_drain_ms)
        from prefect.client.schemas.objects import StateType

        async with get_client() as client:
            for skill, run_id in parked.items():
                running = [s for s in await client.read_flow_run_states(run_id) if s.type is StateType.RUNNING]
                report.check(skill, "executed exactly once", passed=len(running) == 1, detail=f"{len(running)} run(s)")

    # ---- expectations --------------------------------------------------------------------------
    def expect_outage(self, report: ScenarioReport, runs: dict[str, SkillRun]) -> dict[str, str]:
        from aios.state import open_store

        parked = {}
        for skill in self.skills:
            run = runs[skill.name]
            if skill.triage is Triage.critical:
                ok = run.status is RunStatus.completed and run.provider not in (None, "anthropic")
                failover_ms = ((run.finished_at or run.started_at) - run.started_at).total_seconds() * 1000
                report.time_to_failover_ms = max(report.time_to_failover_ms or 0, failover_ms)
                report.check(skill.name, "answered by a fallback target with a valid output", passed=ok, detail=_said(run), ms=failover_ms)
            elif skill.triage is Triage.defer:
                ok = run.status is RunStatus.deferred and bool(run.parked_run_id) and not any(a.provider != "anthropic" for a in run.attempts)
                report.check(skill.name, "parked in the paused deferred queue", passed=ok, detail=_said(run))
                if run.parked_run_id:
                    parked[skill.name] = run.parked_run_id
            else:
                record = open_store().get("runs", run.run_id)
                ok = run.status is RunStatus.dropped and record is not None and record.data.get("status") == "dropped"
                report.check(skill.name, "dropped with a record", passed=ok, detail=_said(run))
        return parked

    def expect_claude_answers(self, report: ScenarioReport, runs: dict[str, SkillRun], avoid_model: str | None, why: str) -> None:
        for skill in self.skills:
            run = runs[skill.name]
            ok = run.status is RunStatus.completed and run.provider == "anthropic" and run.model != avoid_model
            report.check(skill.name, why, passed=ok, detail=_said(run))

    def expect_answered_by(self, report: ScenarioReport, runs: dict[str, SkillRun], provider: str,
                           failed_first: tuple[str, ...] = ()) -> None:
        """Each run completed on `provider`, and each target in `failed_first` was tried and failed before it."""
        for name, run in runs.items():
            failed = {f"{a.provider}:{a.model}" for a in run.attempts if a.outcome is Outcome.failed}
            ok = run.status is RunStatus.completed and run.provider == provider and failed >= set(failed_first)
            expectation = f"answered by {provider}" + (f" after {', '.join(failed_first)} failed" if failed_first else "")
            report.check(name, expectation, passed=ok, detail=_said(run) + _attempts(run))

    def expect_alerts(self, report: ScenarioReport, expected: int, when: str) -> None:
        report.alerts = len(self.inbox.received)
        report.check("alerts", f"{expected} alert(s) {when}", passed=report.alerts == expected, detail=f"{report.alerts} received")

def down_summary(check: dict) -> str:
    bad = [f"{k} {v}" for k, v in sorted(check["health"].items()) if v != "healthy"]
    return ", ".join(bad) or "all healthy"


def _attempts(run: SkillRun) -> str:
    tried = [f"{a.provider}:{a.model} {a.error_class.value if a.error_class else a.outcome.value}" for a in run.attempts]
    return f"; tried {', '.join(tried)}" if tried else ""


def _said(run: SkillRun) -> str:
    who = f"{run.provider}:{run.model}" if run.provider else "nobody"
    return f"{run.status.value} via {who}" + (f" ({run.reason[:80]})" if run.status is RunStatus.failed else "")
