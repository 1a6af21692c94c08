"""`aios run` as users call it: a fresh process, the real CLI, the session's stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_run_json_prints_one_object_with_the_attempt_chain(emulator, stack):
    emulator.set_fault("anthropic", "overloaded")
    proc = stack.run("run", "research-lead", "--input", "company=Acme Freight", "--json")
    result = json.loads(proc.stdout)
    assert set(result) >= {"skill", "status", "provider", "model", "attempts", "output"}
    assert result["skill"] == "research-lead" and result["status"] == "completed"
    assert result["provider"] == "openai"
    assert {"provider", "model", "outcome", "error_class", "ms"} <= set(result["attempts"][0])
    assert result["attempts"][0]["error_class"] == "overloaded"


def test_run_exits_non_zero_with_one_line_when_no_target_answers(emulator, stack):
    emulator.set_fault("anthropic", "overloaded")
    emulator.set_fault("openai", "unavailable")
    proc = stack.run("run", "research-lead", check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("research-lead: failed: all targets failed")
    assert "Traceback" not in proc.stderr


def test_missing_api_keys_are_a_clear_message_not_a_traceback(stack):
    env = {k: v for k, v in stack.env.items() if k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
    proc = subprocess.run(
        [sys.executable, "-m", "aios.cli", "run", "research-lead"],
        env=env, cwd=stack.project, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "ANTHROPIC_API_KEY is not set" in proc.stderr
    assert "Traceback" not in proc.stderr
