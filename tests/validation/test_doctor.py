"""`aios doctor` on throwaway projects: no server, no model call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aios.validation.doctor import Status, run_doctor
from aios.config.settings import Settings
from aios.state import JsonStore

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-ant-doctor-test-0123456789abcdef"

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["fit"],
    "properties": {"fit": {"type": "string", "enum": ["strong", "poor"]}},
}


def write_skill(root: Path, name: str, *, triage: str = "critical", models: str | None = None, extra: str = "") -> None:
    folder = root / "skills" / name
    folder.mkdir(parents=True)
    meta = f"  triage: {triage}\n" + (f'  models: "{models}"\n' if models else "") + extra
    (folder / "SKILL.md").write_text(f"---\nname: {name}\ndescription: A test skill.\nmetadata:\n{meta}---\nDo it.\n")
    (folder / "output.schema.json").write_text(json.dumps(SCHEMA))


def healthy_project(root: Path) -> None:
    write_skill(root, "qualify", models="anthropic:claude-a, openai:gpt-b", extra='  compare: "fit"\n')
    write_skill(root, "digest", triage="drop")
    (root / "AGENTS.md").write_text("# Project\n\nBe brief.\n")
    (root / "CLAUDE.md").write_text("@AGENTS.md\n")
    from deployments import prefect_yaml

    prefect_yaml.write(root)


def rows(report) -> dict[tuple[str, str], tuple[Status, str]]:
    return {(c.check, c.subject): (c.status, c.detail) for c in report.checks}


def test_missing_key_and_broken_skill_fail_and_exit_1(tmp_path):
    write_skill(tmp_path, "good")
    broken = tmp_path / "skills" / "broken"
    broken.mkdir(parents=True)
    (broken / "SKILL.md").write_text("---\nname: not-broken\ndescription: Misnamed.\n---\nx\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOS_", "ANTHROPIC_", "OPENAI_", "PREFECT_"))}
    env |= {"AIOS_HOME": str(tmp_path), "ANTHROPIC_API_KEY": SECRET, "AIOS_STATE_PATH": str(tmp_path / "state.json")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))  # flows/, deployments/
    proc = subprocess.run(
        [sys.executable, "-m", "aios.cli", "doctor", "--json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr, "a key's value is never printed"
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    found = {(c["check"], c["subject"]): c for c in data["checks"]}
    assert found[("api key", "openai")]["status"] == "fail"
    assert "OPENAI_API_KEY is not set" in found[("api key", "openai")]["detail"]
    assert found[("api key", "anthropic")]["status"] == "ok"
    assert found[("skill", "broken")]["status"] == "fail"
    assert "must equal its folder name" in found[("skill", "broken")]["detail"]
    assert found[("skill", "good")]["status"] == "ok"
    assert found[("validation", "good on openai:gpt-5.5")]["status"] == "warn"  # never validated
    assert found[("deployments", "prefect.yaml")]["status"] == "fail"  # cannot check with a broken skill


def test_a_healthy_project_passes_and_reports_validations_from_the_state_store(tmp_path, monkeypatch):
    healthy_project(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("AIOS_TARGETS", raising=False)
    store = JsonStore(tmp_path / "state" / "aios.json")
    settings = Settings(home=tmp_path)

    report = run_doctor(settings, open_store=lambda: store)
    found = rows(report)
    assert report.ok, report.checks
    assert found[("validation", "qualify on openai:gpt-b")][0] is Status.warn
    assert not [k for k in found if k[0] == "validation" and k[1].startswith("digest")], "drop skills never fail over"
    assert found[("mcp", "MCP servers")][0] is Status.ok
    assert found[("instructions", "AGENTS.md -> CLAUDE.md")][0] is Status.ok
    assert found[("deployments", "prefect.yaml")][0] is Status.ok
    assert found[("skill", "qualify")][0] is Status.ok

    store.upsert("validations", "qualify:openai:gpt-b", {"ok": True, "runs": 2, "passed": 2, "validated_at": "2026-01-01T00:00:00"})
    assert rows(run_doctor(settings, open_store=lambda: store))[("validation", "qualify on openai:gpt-b")][0] is Status.ok

    store.upsert(
        "validations", "qualify:openai:gpt-b",
        {"ok": False, "runs": 2, "passed": 0, "problems": ["2/2 run(s) failed: invalid_answer x2"]},
    )
    report = run_doctor(settings, open_store=lambda: store)
    status, detail = rows(report)[("validation", "qualify on openai:gpt-b")]
    assert status is Status.fail and "invalid_answer" in detail and not report.ok


def test_drift_and_pending_journal_entries_are_reported(tmp_path, monkeypatch):
    healthy_project(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    (tmp_path / "CLAUDE.md").write_text("# Claude only\n")  # no longer imports AGENTS.md
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"docs": {"type": "stdio", "command": "docs-mcp"}}}))
    write_skill(tmp_path, "newcomer", triage="defer")  # not in prefect.yaml
    (tmp_path / "skills" / "qualify" / "SKILL.md").write_text(
        (tmp_path / "skills" / "qualify" / "SKILL.md").read_text().replace('compare: "fit"', 'compare: "fit,nope"')
    )
    from datetime import UTC, datetime

    from aios.state.journal import Journal, JournalEntry

    journal_path = tmp_path / "state" / "journal.jsonl"  # three writes queued while "sheets:abc" was down
    monkeypatch.setenv("AIOS_STATE_JOURNAL_PATH", str(journal_path))
    now = datetime.now(UTC)
    Journal(journal_path).append([
        JournalEntry(id=f"e{i}", store="sheets:abc", table="leads", key=f"k{i}", op="upsert", data={"n": i},
                     version=1, updated_at=now, journaled_at=now)
        for i in range(3)
    ])
    report = run_doctor(Settings(home=tmp_path), open_store=lambda: JsonStore(tmp_path / "s.json"))
    found = rows(report)
    assert found[("instructions", "AGENTS.md -> CLAUDE.md")][0] is Status.fail
    assert found[("mcp", ".mcp.json -> .codex/config.toml")][0] is Status.fail
    status, detail = found[("deployments", "prefect.yaml")]
    assert status is Status.fail and "newcomer" in detail
    assert found[("state journal", "journal")] == (Status.warn, "3 write(s) not yet replayed to sheets:abc (run `aios state sync`)")
    assert found[("skill", "qualify")][0] is Status.warn  # compare names a field the contract lacks
    assert not report.ok


@pytest.mark.parametrize("value", ["anthropic:claude-a", "mystery:model"])
def test_a_policy_problem_is_a_row_not_a_crash(tmp_path, monkeypatch, value):
    healthy_project(tmp_path)
    monkeypatch.setenv("AIOS_HOME", str(tmp_path))
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("AIOS_TARGETS", value)
    write_skill(tmp_path, "solo")  # critical, default policy
    from deployments import prefect_yaml

    prefect_yaml.write(tmp_path)
    report = run_doctor(open_store=lambda: JsonStore(tmp_path / "s.json"))  # settings from the environment
    found = rows(report)
    if value.startswith("mystery"):
        status, detail = found[("settings", "AIOS_TARGETS")]
        assert status is Status.fail and "unknown provider(s) mystery" in detail
        assert found[("skill", "solo")][0] is Status.ok, "the other checks ran on the default policy"
        assert not report.ok
    else:
        assert found[("settings", "AIOS_*")][0] is Status.ok
        assert found[("policy", "solo")][0] is Status.warn  # critical but single-provider
