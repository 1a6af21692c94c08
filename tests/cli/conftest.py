"""The `aios` command driven as a user drives it: a fresh process, a throwaway copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIOS = Path(sys.executable).parent / "aios"
PROJECT_FILES = ("skills", "knowledge", "memory", "AGENTS.md", "CLAUDE.md", "prefect.yaml")
KEY = "sk-cli-test-not-a-real-key"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any aios, Prefect or provider setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOS_", "PREFECT_", "ANTHROPIC_", "OPENAI_"))}
    return env | {"ANTHROPIC_API_KEY": KEY, "OPENAI_API_KEY": KEY, "COLUMNS": "200"} | extra


def aios(*args: str, env: dict[str, str], cwd: Path, timeout: float = 180) -> Result:
    proc = subprocess.run([str(AIOS), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of this repository's project files (skills, knowledge, memory, prefect.yaml)."""
    home = tmp_path / "project"
    home.mkdir()
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, home / name)
        else:
            shutil.copy2(src, home / name)
    return home


@pytest.fixture
def home_env(project, tmp_path):
    """Environment for a process with AIOS_HOME=project and no Prefect server (no command here needs one)."""
    return clean_env(AIOS_HOME=str(project), PREFECT_HOME=str(tmp_path / "prefect"))


@pytest.fixture
def stack_env(stack, emulator, project, tmp_path):
    """The session's emulators and Prefect server, but this test's project: its memory/ and state/."""
    env = {k: v for k, v in stack.env.items() if not k.startswith(("AIOS_STATE_", "AIOS_MEMORY_"))}
    return env | {"AIOS_HOME": str(project), "PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "200"}
