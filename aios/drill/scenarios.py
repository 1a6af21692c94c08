"""The drill's scenarios as a registry of values: a name and the coroutine that plays it.

Adding a scenario is adding one entry to `SCENARIOS`; the CLI's choices, the default run and the
report's order all come from it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
import time
from dataclasses import dataclass

from aios.core.policy import DEFAULT_TARGETS, OPENAI
from aios.core.triage import Triage
from aios.drill.report import DrillReport, ScenarioReport
from aios.drill.runner import CLAUDE_API, Drill, down_summary
from aios.runs.record import SkillRun
from aios.config.settings import AGENT_CLI_PROVIDERS

CLAUDE_CODE, CODEX = AGENT_CLI_PROVIDERS


@dataclass(frozen=True)
class Scenario:
    name: str
    play: Callable[[Drill, str], Awaitable[ScenarioReport]]  # (drill, scenario name) -> its report


async def outage(drill: Drill, name: str) -> ScenarioReport:
    """Claude cut off (529s, a black hole, or answers slower than the read timeout) with a status page that says so."""
    report = ScenarioReport(name=name)
    drill.reset()
    with drill.outage(name):
        result, report.time_to_detect_ms = await drill.check_health()
        report.check("health", "outage detected, deferred queue paused", passed=not result["claude_healthy"], detail=down_summary(result), ms=report.time_to_detect_ms)
        runs = await drill.run_all()
        parked = drill.expect_outage(report, runs)
        drill.expect_alerts(report, 1, "for the outage")
    await drill.recover(report)
    drill.expect_alerts(report, 2, "in all: the outage and the recovery")
    await drill.drain(report, parked)
    return report


async def model_down(drill: Drill, name: str) -> ScenarioReport:
    """One Claude model fails and the status page names its family: the next Claude model answers."""
    from aios.config.settings import get_settings

    report = ScenarioReport(name=name)
    drill.reset()
    first = get_settings().policy().targets[0]
    family = next((f for f in ("opus", "sonnet", "haiku") if f in first.model), first.model)
    drill.control.set_status("claude", incidents=[{"name": f"Elevated error rates on Claude {family.title()}", "status": "identified", "impact": "major", "components": [CLAUDE_API]}])
    drill.control.set_fault("anthropic", "error_500", model=first.model)
    result, report.time_to_detect_ms = await drill.check_health()
    detected = result["health"].get(first.key) == "down" and result["claude_healthy"]
    report.check("health", f"{first.key} down, Claude still usable", passed=detected, detail=down_summary(result), ms=report.time_to_detect_ms)
    runs = await drill.run_all()
    drill.expect_claude_answers(report, runs, first.model, "answered by the next Claude model, not a secondary")
    drill.expect_alerts(report, 1, f"for {first.key}")
    await drill.recover(report)
    return report


async def status_page_only(drill: Drill, name: str) -> ScenarioReport:
    """The status page says down but our probes get answers: degraded, and no needless failover."""
    report = ScenarioReport(name=name)
    drill.reset()
    drill.control.set_status("claude", components={CLAUDE_API: "major_outage"})
    result, report.time_to_detect_ms = await drill.check_health()
    report.check("health", "degraded, not down: our probes still get answers", passed=result["claude_healthy"] and result["health"].get("anthropic") == "degraded", detail=down_summary(result))
    runs = await drill.run_all()
    drill.expect_claude_answers(report, runs, None, "still answered by Claude (no needless failover)")
    drill.expect_alerts(report, 1, "warning of the degradation")
    await drill.recover(report)
    return report


async def flapping(drill: Drill, name: str) -> ScenarioReport:
    """Down, up for one check, down again: the queue stays paused and users get one alert."""
    report = ScenarioReport(name=name)
    drill.reset()
    with drill.outage("api-down"):
        _, report.time_to_detect_ms = await drill.check_health()
    blip, _ = await drill.check_health()  # Claude answers once...
    report.check("queue", "one healthy check does not resume the queue", passed=not blip["claude_healthy"], detail=down_summary(blip))
    with drill.outage("api-down"):
        await drill.check_health()  # ...and is down again
        runs = await drill.run_all()
        parked = drill.expect_outage(report, runs)
        drill.expect_alerts(report, 1, "for the whole flap (no storm)")
    await drill.recover(report)
    await drill.drain(report, parked)
    return report


async def recovery(drill: Drill, name: str, parked_runs: int = 3) -> ScenarioReport:
    """Several runs parked during an outage each execute once, on Claude, after it comes back."""
    report = ScenarioReport(name=name)
    drill.reset()
    deferrable = [s for s in drill.skills if s.triage is Triage.defer]
    if not deferrable:
        report.check("skills", "a defer skill to park", passed=True, detail="no defer skill: nothing to drain")
        return report
    parked: dict[str, str] = {}
    with drill.outage("api-down"):
        await drill.check_health()
        for i in range(parked_runs):
            skill = deferrable[i % len(deferrable)]
            state = await drill.skill_flow(skill.name)(inputs=None, return_state=True)  # each run its own occurrence
            run = SkillRun.model_validate(await state.result(raise_on_failure=False))
            if run.parked_run_id:
                parked[f"{skill.name}#{i}"] = run.parked_run_id
    report.check("queue", f"{parked_runs} runs parked", passed=len(parked) == parked_runs, detail=f"{len(parked)} parked")
    await drill.recover(report)
    await drill.drain(report, parked)
    return report


async def records_resume(drill: Drill, name: str) -> ScenarioReport:
    """Claude answers a records workflow's first step, then goes down: the fallback answers the rest,
    and no finished step is asked again -- model answers in the emulator's request log equal the
    checkpoints, per provider, and a second run asks no model at all."""
    from collections import Counter

    from aios.core.workflow import PROGRESS_TABLE, Progress
    from aios.config.settings import get_settings
    from aios.runs.record import RecordsRun
    from aios.state import open_store

    report = ScenarioReport(name=name)
    drill.reset()  # seeds the sample records
    skills = [s for s in drill.skills if s.metadata.source is not None and s.triage is Triage.critical]
    if not skills:
        report.check("skills", "a critical records skill", passed=True, detail="no records skill: nothing to resume")
    for skill in skills:
        source, steps = skill.metadata.source, skill.metadata.step_names
        store = open_store(skill=skill.name)
        pending = len(store.list(source.table, dict(source.where))[: skill.metadata.batch])
        first = get_settings().skill_policy(skill).targets[0]
        drill.control.clear_requests()
        drill.control.set_fault("anthropic", "ok", model=first.model, times=pending)  # step 1 of each record
        drill.control.set_fault("anthropic", "overloaded")
        started = time.perf_counter()
        state = await drill.records_flow(skill.name)(return_state=True)
        run = RecordsRun.model_validate(await state.result(raise_on_failure=False))
        report.time_to_failover_ms = (time.perf_counter() - started) * 1000
        drill.control.clear_faults()
        progress = [Progress.model_validate(rec.data) for r in run.records
                    if (rec := store.get(PROGRESS_TABLE, Progress.key_for(skill.name, source.table, r.key)))]
        checkpoints = Counter(done.provider for p in progress for done in p.steps.values())
        answered = Counter(r["provider"] for r in drill.control.requests() if r["status"] == 200)
        report.check(skill.name, f"{pending} records, every step answered once", passed=pending > 0 and answered == checkpoints
                     and len(run.keys("written")) == pending, detail=f"answers {dict(answered)}, checkpoints {dict(checkpoints)}, {len(run.keys('written'))} written")
        resumed = all(p.steps[steps[0]].provider == first.provider and all(p.steps[s].provider != first.provider for s in steps[1:]) for p in progress)
        report.check(skill.name, f"step '{steps[0]}' kept from Claude, later steps from the fallback", passed=bool(progress) and resumed,
                     detail=", ".join(f"{p.record}: " + "/".join(p.steps[s].provider for s in steps if s in p.steps) for p in progress[:3]))
        drill.control.clear_requests()
        again = RecordsRun.model_validate(await (await drill.records_flow(skill.name)(return_state=True)).result(raise_on_failure=False))
        asked = drill.control.requests()
        report.check(skill.name, "a second run asks no model", passed=not asked and not again.records, detail=f"{len(asked)} request(s)")
    await drill.recover(report)
    return report


# --- agent CLIs in the chain (`claude-code:…`, `codex:…`): played only where the CLIs are installed ---
SDK_TARGET = DEFAULT_TARGETS[0]  # anthropic:claude-opus-5-5, through the anthropic SDK
OPENAI_TARGET = next(t for t in DEFAULT_TARGETS if t.provider == OPENAI)
CLAUDE_CODE_TARGET = "claude-code:sonnet"
CODEX_TARGET = "codex:gpt-5.5"


def _critical(drill: Drill, report: ScenarioReport) -> list:
    skills = [s for s in drill.skills if s.triage is Triage.critical]
    if not skills:
        report.check("skills", "a critical skill to fail over", passed=True, detail="no critical skill: nothing to answer")
    return skills


def _anthropic_models_asked(drill: Drill) -> list[str]:
    return sorted({r["model"] for r in drill.control.requests("anthropic")})


async def claude_code_through_api_outage(drill: Drill, name: str) -> ScenarioReport:
    """The Claude API fails for the SDK target while Claude Code still gets answers: claude-code answers.

    Models an outage that spares Claude Code: a subscription login routed apart from the API key,
    or an outage of one model that spares the model Claude Code asks for. The emulator's fault is
    per model: the SDK target's model gets 529s, Claude Code asks for its own model (`sonnet`
    resolves to another name) and is answered. Chain: anthropic SDK -> claude-code -> openai.
    """
    report = ScenarioReport(name=name)
    if why := drill.missing_clis((CLAUDE_CODE,)):
        report.skipped = why
        return report
    drill.reset()
    with drill.agent_cli_chain(f"{SDK_TARGET.key},{CLAUDE_CODE_TARGET},{OPENAI_TARGET.key}"):
        drill.control.set_fault("anthropic", "overloaded", model=SDK_TARGET.model)
        drill.control.clear_requests()
        result, report.time_to_detect_ms = await drill.check_health()
        report.check("health", f"{SDK_TARGET.key} down", passed=result["health"].get(SDK_TARGET.key) == "down",
                     detail=down_summary(result), ms=report.time_to_detect_ms)
        asked = _anthropic_models_asked(drill)
        report.check("health", f"{CLAUDE_CODE_TARGET} checked for readiness, asked no question",
                     passed=asked == [SDK_TARGET.model] and result["health"].get(CLAUDE_CODE_TARGET) == "healthy",
                     detail=f"{CLAUDE_CODE_TARGET} {result['health'].get(CLAUDE_CODE_TARGET)}; models asked: {', '.join(asked)}")
        drill.control.clear_requests()
        runs = await drill.run_all(_critical(drill, report))
        drill.expect_answered_by(report, runs, CLAUDE_CODE)
        openai_calls = drill.control.requests("openai")
        report.check("policy", f"{OPENAI_TARGET.key} not needed", passed=not openai_calls,
                     detail=f"{len(openai_calls)} OpenAI request(s); Claude Code asked for {', '.join(_anthropic_models_asked(drill))}")
        await drill.recover(report)
    return report


async def anthropic_all_down(drill: Drill, name: str) -> ScenarioReport:
    """Every Anthropic target fails, Claude Code included (same API): codex answers, before the OpenAI SDK.

    Chain: anthropic SDK -> claude-code -> codex -> openai. The emulator answers every Anthropic
    model with 529s; Codex talks to the emulated Responses API.
    """
    report = ScenarioReport(name=name)
    if why := drill.missing_clis((CLAUDE_CODE, CODEX)):
        report.skipped = why
        return report
    drill.reset()
    with drill.agent_cli_chain(f"{SDK_TARGET.key},{CLAUDE_CODE_TARGET},{CODEX_TARGET},{OPENAI_TARGET.key}"):
        drill.control.set_fault("anthropic", "overloaded")
        result, report.time_to_detect_ms = await drill.check_health()
        report.check("health", "Claude API down", passed=not result["claude_healthy"], detail=down_summary(result),
                     ms=report.time_to_detect_ms)
        drill.control.clear_requests()
        started = time.perf_counter()
        runs = await drill.run_all(_critical(drill, report))
        report.time_to_failover_ms = (time.perf_counter() - started) * 1000
        drill.expect_answered_by(report, runs, CODEX, failed_first=(CLAUDE_CODE_TARGET,))
        sdk_calls = [r for r in drill.control.requests("openai") if not r["path"].endswith("/responses")]
        report.check("policy", f"{OPENAI_TARGET.key} not needed", passed=not sdk_calls,
                     detail=f"{len(sdk_calls)} OpenAI SDK request(s)")
        await drill.recover(report)
    return report


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("api-down", outage),
        Scenario("blackhole", outage),
        Scenario("model-down", model_down),
        Scenario("slow", outage),
        Scenario("flapping", flapping),
        Scenario("status-page-only", status_page_only),
        Scenario("recovery", recovery),
        Scenario("records-resume", records_resume),
        Scenario("claude-code-through-api-outage", claude_code_through_api_outage),
        Scenario("anthropic-all-down", anthropic_all_down),
    )
}


def policy_check(drill: Drill) -> ScenarioReport:
    """Before any outage: every critical skill has a secondary provider to fail over to."""
    from aios.config.settings import get_settings

    report = ScenarioReport(name="policy")
    for skill in drill.skills:
        if skill.triage is not Triage.critical:
            continue
        policy = get_settings().policy(skill.metadata.models)
        secondaries = [t.key for t in policy.targets if t.provider != policy.primary_provider]
        report.check(skill.name, "a secondary provider to fail over to", passed=bool(secondaries), detail=", ".join(secondaries) or "no secondary configured: this skill stops when Claude does")
    return report


async def run_drill(drill: Drill, names: Iterable[str]) -> DrillReport:
    """The policy check, then each named scenario in turn."""
    report = DrillReport(live=drill.live, scenarios=[policy_check(drill)])
    for name in names:
        drill.progress(name)
        report.scenarios.append(await SCENARIOS[name].play(drill, name))
    return report
