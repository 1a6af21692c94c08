"""A skill whose chain is `claude-code → codex`, run as its Prefect flow with the real CLIs against the emulators.

The skill's own `metadata.models` names the two CLI targets; the flow runs in this process on the
session's Prefect server. The run record, the OpenTelemetry spans and the run's Prefect artifact
must each tell the same story of the attempts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

from aios.core.failures import ErrorClass
from aios.core.fallback import Outcome
from aios.runs.record import RunStatus, SkillRun

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SKILL = "lead-on-clis"
CLAUDE_CODE, CODEX = "claude-code:sonnet", "codex:gpt-5.5"


@pytest.fixture(scope="module")
def clis() -> None:
    """The pinned CLIs in .aios/tools/ (a no-op when they are already installed)."""
    subprocess.run([str(ROOT / "scripts" / "install-agent-clis")], check=True)


def project(home: Path, deadline: str | None) -> Path:
    """A project whose one skill is research-lead renamed, with the chain claude-code → codex (and a deadline)."""
    shutil.copytree(ROOT / "knowledge", home / "knowledge", ignore=shutil.ignore_patterns(".*"))
    skill = home / "skills" / SKILL
    shutil.copytree(ROOT / "skills" / "research-lead", skill)
    (skill / "records.sample.json").unlink(missing_ok=True)
    extra = f'  models: "{CLAUDE_CODE}, {CODEX}"\n' + (f'  deadline: "{deadline}"\n' if deadline else "")
    text = (skill / "SKILL.md").read_text().replace("name: research-lead", f"name: {SKILL}", 1)
    (skill / "SKILL.md").write_text(text.replace("metadata:\n", f"metadata:\n{extra}", 1))
    return home


@pytest.fixture
def on_clis(clis, stack, emulator, settings_env, tmp_path, monkeypatch) -> Iterator:
    """`use(deadline=None, **settings)`: point aios at the project, and both CLIs at the emulators with
    scratch homes (never the user's); the CLIs' own logins are the emulator's key."""
    from aios.providers.agent_cli import project_tools_bin

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))
    (tmp_path / "codex-home").mkdir()
    binaries = {name: str(project_tools_bin(name)) for name in ("claude", "codex")}  # this checkout's, before AIOS_HOME moves

    def use(deadline: str | None = None, **settings):
        home = project(tmp_path / "project", deadline)
        settings_env(
            AIOS_HOME=home,
            AIOS_CLAUDE_CODE_BIN=binaries["claude"],
            AIOS_CODEX_BIN=binaries["codex"],
            AIOS_CODEX_BASE_URL=f"{stack.emulator_url}/openai/v1",
            AIOS_HEDGE="false",  # one attempt after another: the order this test asserts
            **settings,
        )

    yield use


@pytest.fixture
def otel():
    """Our tracer writes to an in-memory exporter for this test (the global provider untouched)."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from aios.observability import otel

    exporter = InMemorySpanExporter()
    otel.install(exporter, InMemoryMetricReader())
    yield exporter
    otel.reset()


async def run_flow():
    from flows.skill_flow import build_skill_flow

    state = await build_skill_flow(SKILL)(return_state=True)
    return state, SkillRun.model_validate(await state.result(raise_on_failure=False))


def valid(output: dict) -> bool:
    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "skills" / "research-lead" / "output.schema.json").read_text())
    return not list(Draft202012Validator(schema).iter_errors(output))


async def artifact_of(run: SkillRun) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.run_id]))
        )
    [text] = [a.data for a in artifacts if a.key == f"{SKILL}-run"]
    return text


def chat_spans(exporter) -> list:
    return sorted((s for s in exporter.get_finished_spans() if s.name.startswith("chat ")), key=lambda s: s.start_time)


def tried(run: SkillRun) -> list[tuple[str, Outcome, ErrorClass | None]]:
    return [(f"{a.provider}:{a.model}", a.outcome, a.error_class) for a in run.attempts]


async def test_healthy_claude_code_answers_the_skill_flow(on_clis, emulator, otel):
    on_clis()
    state, run = await run_flow()
    assert state.is_completed() and run.status is RunStatus.completed, run.summary()
    assert (run.provider, run.model) == ("claude-code", "sonnet") and valid(run.output)
    assert tried(run) == [(CLAUDE_CODE, Outcome.ok, None)]
    assert [(r["provider"], r["stream"]) for r in emulator.requests()] == [("anthropic", True)], "the CLI, not the SDK"
    [span] = chat_spans(otel)
    assert (span.attributes["aios.target"], span.attributes["aios.outcome"]) == (CLAUDE_CODE, "ok")
    assert re.search(rf"\| 1 \| {CLAUDE_CODE} \| ok \| ", await artifact_of(run))


async def test_with_anthropic_overloaded_codex_answers_and_record_span_and_artifact_show_both_attempts(
    on_clis, emulator, otel
):
    from aios.state import open_store

    on_clis()
    emulator.set_fault("anthropic", "overloaded")  # 529 for every request Claude Code makes
    state, run = await run_flow()
    assert state.is_completed() and run.status is RunStatus.completed, run.summary()
    assert (run.provider, run.model) == ("codex", "gpt-5.5") and valid(run.output)

    # the run record, as returned and as stored
    assert tried(run) == [(CLAUDE_CODE, Outcome.failed, ErrorClass.overloaded), (CODEX, Outcome.ok, None)]
    assert run.attempts[0].status == 529
    stored = SkillRun.model_validate(open_store(skill=SKILL).get("runs", run.run_id).data)
    assert tried(stored) == tried(run)
    assert [r["provider"] for r in emulator.requests()] == ["anthropic", "openai"]

    # the spans: the run's span, and one client span per attempt under it
    [root] = [s for s in otel.get_finished_spans() if s.name == f"skill {SKILL}"]
    assert root.attributes["aios.answered_by"] == CODEX and root.attributes["prefect.flow_run.id"] == run.run_id
    failed, answered = chat_spans(otel)
    assert [(s.attributes["aios.attempt"], s.attributes["aios.target"]) for s in (failed, answered)] == [
        (1, CLAUDE_CODE),
        (2, CODEX),
    ]
    assert failed.attributes["error.type"] == "overloaded" and failed.status.status_code is StatusCode.ERROR
    assert answered.attributes["aios.outcome"] == "ok" and "error.type" not in answered.attributes
    assert answered.attributes["aios.failover.from"] == CLAUDE_CODE
    assert all(s.parent.span_id == root.context.span_id for s in (failed, answered))

    # the Prefect artifact of the run, read back from the API
    text = await artifact_of(run)
    assert f"answered by **{CODEX}**" in text
    assert re.search(rf"\| 1 \| {CLAUDE_CODE} \| failed \| overloaded \| \d+ \| .*529", text), text
    assert re.search(rf"\| 2 \| {CODEX} \| ok \|  \| \d+ \|", text), text


async def test_the_deadline_bounds_the_whole_run_so_memory_extraction_is_cut_and_the_answer_kept(on_clis, emulator):
    """Both endpoints answer after 16 s. The answer (16 s plus the CLI's start, s) fits in the 30 s deadline
    while s < 14 s; the memory extraction after it gets the 14 - s s left, never its 16 s, so it is cut
    whatever the machine's load (given a fresh 30 s it would finish)."""
    from aios.config.settings import get_settings
    from aios.portability.memory import recent_facts
    from aios.state import open_store

    on_clis(deadline="30s", AIOS_MEMORY_EXTRACTION="true")
    emulator.set_fault("anthropic", "slow", delay=16)
    emulator.set_fault("openai", "slow", delay=16)
    state, run = await run_flow()
    assert state.is_completed() and run.status is RunStatus.completed, run.summary()
    assert run.provider == "claude-code" and valid(run.output), "the answer is kept"
    assert tried(run) == [(CLAUDE_CODE, Outcome.ok, None)]
    assert run.memory == "not extracted: deadline 30s passed"
    assert not [f for f in recent_facts(get_settings().memory_path, limit=1000) if f.source_run == run.run_id]
    assert open_store(skill=SKILL).get("runs", run.run_id).data["memory"] == run.memory
    assert "Memory extraction: not extracted: deadline 30s passed" in await artifact_of(run)
    assert emulator.requests("openai") == [], "no further target starts once the deadline has passed"
