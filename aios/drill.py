"""Fire drills: cut Claude off, run every skill, check each outcome against its triage class, bring
Claude back, and check the deferred queue drains exactly once.

The drill runs against an isolated local stack (its own Prefect server, worker and emulators), so it
never parks or pauses anything on the user's production server. Offline, both providers are
emulated; with `live=True` the real OpenAI answers and Anthropic is cut off by a black hole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import BaseModel, Field

from aios.core.triage import Triage
from aios.runs import RunStatus, SkillRun
from aios.skills import Skill

SCENARIOS = ("api-down", "blackhole", "model-down", "slow", "flapping", "status-page-only", "recovery")
CLAUDE_API = "Claude API (api.anthropic.com)"
DRILL_ENV = {
    "AIOS_CONNECT_TIMEOUT": "1",
    "AIOS_READ_TIMEOUT": "3",
    "AIOS_PROBE_TIMEOUT": "1",
    "AIOS_HEALTH_RECOVER_AFTER": "2",
    "AIOS_MEMORY_EXTRACTION": "false",
}
SLOW_DELAY = 6.0  # seconds: past the drill's read timeout


class Check(BaseModel):
    scenario: str
    subject: str  # a skill name, or "alerts", "queue", "policy"
    expectation: str
    passed: bool
    detail: str = ""
    ms: float | None = None


class ScenarioReport(BaseModel):
    name: str
    checks: list[Check] = Field(default_factory=list)
    time_to_detect_ms: float | None = None
    time_to_failover_ms: float | None = None
    time_to_drain_ms: float | None = None
    alerts: int = 0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


class DrillReport(BaseModel):
    live: bool
    scenarios: list[ScenarioReport] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.scenarios) and all(s.passed for s in self.scenarios)

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "live": self.live,
            "scenarios": [
                {**s.model_dump(mode="json"), "passed": s.passed} for s in self.scenarios
            ],
        }

    def markdown(self) -> str:
        lines = [f"# Fire drill: {'PASSED' if self.passed else 'FAILED'}", ""]
        lines += ["| scenario | detect ms | failover ms | drain ms | alerts | verdict |", "|---|---|---|---|---|---|"]
        for s in self.scenarios:
            lines.append(
                f"| {s.name} | {_fmt(s.time_to_detect_ms)} | {_fmt(s.time_to_failover_ms)} | {_fmt(s.time_to_drain_ms)} "
                f"| {s.alerts} | {'pass' if s.passed else 'FAIL'} |"
            )
        lines += ["", "| scenario | subject | expectation | verdict | detail |", "|---|---|---|---|---|"]
        for s in self.scenarios:
            for c in s.checks:
                lines.append(f"| {c.scenario} | {c.subject} | {c.expectation} | {'pass' if c.passed else 'FAIL'} | {c.detail} |")
        return "\n".join(lines)


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f}"


class AlertInbox:
    """A loopback receiver for Apprise `json://` alerts: the drill counts what users would get."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with contextlib.suppress(ValueError):
                    inbox.received.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_port}/alerts"

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class Drill:
    """One drill against a running stack (env already pointing at it, deployments and a worker up)."""

    control: object  # EmulatorControl
    skills: list[Skill]
    inbox: AlertInbox
    live: bool = False
    progress: Callable[[str], None] = lambda message: None
    report: DrillReport = field(init=False)

    def __post_init__(self) -> None:
        self.report = DrillReport(live=self.live)

    # ---- helpers -------------------------------------------------------------------------------
    def _reset(self) -> None:
        from aios.outage import health_store
        from aios.runtime import reset_runtime
        from aios.settings import reload_settings
        from aios.state import open_store

        self.control.clear_faults()
        self.control.clear_status()
        store = open_store()
        for table, key in ((health_store.HEALTH_TABLE, health_store.SNAPSHOT_KEY), (health_store.HEALTH_TABLE, "state"), ("alerts", "failover:anthropic")):
            store.delete(table, key)
        reload_settings()
        reset_runtime()
        self.inbox.received.clear()

    @contextlib.contextmanager
    def _anthropic_black_holed(self) -> Iterator[None]:
        from aios.emulators.blackhole import BlackHole
        from aios.runtime import reset_runtime

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

    def _outage(self, kind: str) -> contextlib.AbstractContextManager:
        """Cut Claude off: 529s (or a black hole when live), plus a status page that admits it."""
        if self.live or kind == "blackhole":
            return self._anthropic_black_holed()
        self.control.set_status("claude", components={CLAUDE_API: "major_outage"}, incidents=[
            {"name": "Elevated errors on the Claude API", "status": "investigating", "impact": "critical", "components": [CLAUDE_API]}
        ])
        if kind == "slow":
            self.control.set_fault("anthropic", "slow", delay=SLOW_DELAY)
        else:
            self.control.set_fault("anthropic", "overloaded")
        return contextlib.nullcontext()

    async def _check(self) -> tuple[dict, float]:
        from flows.status_check import status_check

        started = time.perf_counter()
        result = await status_check()
        return result, (time.perf_counter() - started) * 1000

    async def _run_all(self) -> dict[str, SkillRun]:
        from flows.skill import build_skill_flow

        runs = {}
        for skill in self.skills:
            state = await build_skill_flow(skill.name)(return_state=True)
            runs[skill.name] = SkillRun.model_validate(await state.result(raise_on_failure=False))
        return runs

    async def _recover(self, report: ScenarioReport) -> None:
        """Bring Claude back and run status checks until the queue resumes (hysteresis included)."""
        self.control.clear_faults()
        self.control.clear_status()
        for _ in range(4):
            result, _ = await self._check()
            if result["claude_healthy"]:
                return
        report.checks.append(Check(scenario=report.name, subject="queue", expectation="resumed after recovery", passed=False, detail="Claude still unhealthy after 4 checks"))

    async def _drain(self, report: ScenarioReport, parked: dict[str, str], timeout: float = 120) -> None:
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
            report.checks.append(Check(scenario=report.name, subject=skill, expectation="parked run executed on Claude after recovery", passed=ok, detail=detail, ms=report.time_to_drain_ms))
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        async with get_client() as client:
            for skill, run_id in parked.items():
                fr = await client.read_flow_run(run_id)
                runs = await client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[fr.deployment_id])), limit=200
                )
                same = [r for r in runs if r.parameters == fr.parameters and r.created >= fr.created]
                report.checks.append(Check(scenario=report.name, subject=skill, expectation="executed exactly once", passed=len(same) == 1, detail=f"{len(same)} run(s)"))

    # ---- expectations --------------------------------------------------------------------------
    def _expect_outage(self, report: ScenarioReport, runs: dict[str, SkillRun]) -> dict[str, str]:
        from aios.state import open_store

        parked = {}
        for skill in self.skills:
            run = runs[skill.name]
            if skill.triage is Triage.critical:
                ok = run.status is RunStatus.completed and run.provider not in (None, "anthropic")
                failover_ms = ((run.finished_at or run.started_at) - run.started_at).total_seconds() * 1000
                report.time_to_failover_ms = max(report.time_to_failover_ms or 0, failover_ms)
                report.checks.append(Check(scenario=report.name, subject=skill.name, expectation="answered by a fallback target with a valid output", passed=ok, detail=_said(run), ms=failover_ms))
            elif skill.triage is Triage.defer:
                ok = run.status is RunStatus.deferred and bool(run.parked_run_id) and not any(a.provider != "anthropic" for a in run.attempts)
                report.checks.append(Check(scenario=report.name, subject=skill.name, expectation="parked in the paused deferred queue", passed=ok, detail=_said(run)))
                if run.parked_run_id:
                    parked[skill.name] = run.parked_run_id
            else:
                record = open_store().get("runs", run.run_id)
                ok = run.status is RunStatus.dropped and record is not None and record.data.get("status") == "dropped"
                report.checks.append(Check(scenario=report.name, subject=skill.name, expectation="dropped with a record", passed=ok, detail=_said(run)))
        return parked

    def _expect_claude_answers(self, report: ScenarioReport, runs: dict[str, SkillRun], avoid_model: str | None, why: str) -> None:
        for skill in self.skills:
            run = runs[skill.name]
            ok = run.status is RunStatus.completed and run.provider == "anthropic" and run.model != avoid_model
            report.checks.append(Check(scenario=report.name, subject=skill.name, expectation=why, passed=ok, detail=_said(run)))

    def _expect_alerts(self, report: ScenarioReport, expected: int, when: str) -> None:
        report.alerts = len(self.inbox.received)
        report.checks.append(Check(scenario=report.name, subject="alerts", expectation=f"{expected} alert(s) {when}", passed=report.alerts == expected, detail=f"{report.alerts} received"))

    # ---- scenarios -----------------------------------------------------------------------------
    async def outage_scenario(self, name: str) -> ScenarioReport:
        report = ScenarioReport(name=name)
        self._reset()
        with self._outage(name):
            result, report.time_to_detect_ms = await self._check()
            report.checks.append(Check(scenario=name, subject="health", expectation="outage detected, deferred queue paused", passed=not result["claude_healthy"], detail=_down(result), ms=report.time_to_detect_ms))
            runs = await self._run_all()
            parked = self._expect_outage(report, runs)
            self._expect_alerts(report, 1, "for the outage")
        await self._recover(report)
        self._expect_alerts(report, 2, "in all: the outage and the recovery")
        await self._drain(report, parked)
        return report

    async def model_down(self) -> ScenarioReport:
        report = ScenarioReport(name="model-down")
        self._reset()
        from aios.settings import get_settings

        first = get_settings().policy().targets[0]
        family = next((f for f in ("opus", "sonnet", "haiku") if f in first.model), first.model)
        self.control.set_status("claude", incidents=[{"name": f"Elevated error rates on Claude {family.title()}", "status": "identified", "impact": "major", "components": [CLAUDE_API]}])
        self.control.set_fault("anthropic", "error_500", model=first.model)
        result, report.time_to_detect_ms = await self._check()
        detected = result["health"].get(first.key) == "down" and result["claude_healthy"]
        report.checks.append(Check(scenario="model-down", subject="health", expectation=f"{first.key} down, Claude still usable", passed=detected, detail=_down(result), ms=report.time_to_detect_ms))
        runs = await self._run_all()
        self._expect_claude_answers(report, runs, first.model, "answered by the next Claude model, not a secondary")
        self._expect_alerts(report, 1, f"for {first.key}")
        await self._recover(report)
        return report

    async def status_page_only(self) -> ScenarioReport:
        report = ScenarioReport(name="status-page-only")
        self._reset()
        self.control.set_status("claude", components={CLAUDE_API: "major_outage"})
        result, report.time_to_detect_ms = await self._check()
        report.checks.append(Check(scenario=report.name, subject="health", expectation="degraded, not down: our probes still get answers", passed=result["claude_healthy"] and result["health"].get("anthropic") == "degraded", detail=_down(result)))
        runs = await self._run_all()
        self._expect_claude_answers(report, runs, None, "still answered by Claude (no needless failover)")
        self._expect_alerts(report, 1, "warning of the degradation")
        await self._recover(report)
        return report

    async def flapping(self) -> ScenarioReport:
        report = ScenarioReport(name="flapping")
        self._reset()
        with self._outage("api-down"):
            _, report.time_to_detect_ms = await self._check()
        blip, _ = await self._check()  # Claude answers once...
        report.checks.append(Check(scenario=report.name, subject="queue", expectation="one healthy check does not resume the queue", passed=not blip["claude_healthy"], detail=_down(blip)))
        with self._outage("api-down"):
            await self._check()  # ...and is down again
            runs = await self._run_all()
            parked = self._expect_outage(report, runs)
            self._expect_alerts(report, 1, "for the whole flap (no storm)")
        await self._recover(report)
        await self._drain(report, parked)
        return report

    async def recovery(self, parked_runs: int = 3) -> ScenarioReport:
        from flows.skill import build_skill_flow

        report = ScenarioReport(name="recovery")
        self._reset()
        deferrable = [s for s in self.skills if s.triage is Triage.defer]
        if not deferrable:
            report.checks.append(Check(scenario="recovery", subject="skills", expectation="a defer skill to park", passed=True, detail="no defer skill: nothing to drain"))
            return report
        parked: dict[str, str] = {}
        with self._outage("api-down"):
            await self._check()
            for i in range(parked_runs):
                skill = deferrable[i % len(deferrable)]
                state = await build_skill_flow(skill.name)(inputs={"drill_run": i}, return_state=True)
                run = SkillRun.model_validate(await state.result(raise_on_failure=False))
                if run.parked_run_id:
                    parked[f"{skill.name}#{i}"] = run.parked_run_id
        report.checks.append(Check(scenario="recovery", subject="queue", expectation=f"{parked_runs} runs parked", passed=len(parked) == parked_runs, detail=f"{len(parked)} parked"))
        await self._recover(report)
        await self._drain(report, parked)
        return report

    async def run(self, scenarios: list[str]) -> DrillReport:
        self.report.scenarios.append(self._policy_check())
        for name in scenarios:
            self.progress(name)
            if name in ("api-down", "blackhole", "slow"):
                scenario = await self.outage_scenario(name)
            elif name == "model-down":
                scenario = await self.model_down()
            elif name == "status-page-only":
                scenario = await self.status_page_only()
            elif name == "flapping":
                scenario = await self.flapping()
            else:
                scenario = await self.recovery()
            self.report.scenarios.append(scenario)
        return self.report

    def _policy_check(self) -> ScenarioReport:
        from aios.settings import get_settings

        report = ScenarioReport(name="policy")
        for skill in self.skills:
            if skill.triage is not Triage.critical:
                continue
            policy = get_settings().policy(skill.metadata.models)
            secondaries = [t.key for t in policy.targets if t.provider != policy.primary_provider]
            report.checks.append(Check(scenario="policy", subject=skill.name, expectation="a secondary provider to fail over to", passed=bool(secondaries), detail=", ".join(secondaries) or "no secondary configured: this skill stops when Claude does"))
        return report


def _down(check: dict) -> str:
    bad = [f"{k} {v}" for k, v in sorted(check["health"].items()) if v != "healthy"]
    return ", ".join(bad) or "all healthy"


def _said(run: SkillRun) -> str:
    who = f"{run.provider}:{run.model}" if run.provider else "nobody"
    return f"{run.status.value} via {who}" + (f" ({run.reason[:80]})" if run.status is RunStatus.failed else "")
