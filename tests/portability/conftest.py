"""Shared helpers for the portability tests: fixture files and a CLI built from our sub-apps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aios.cli.portability import export_command, memory_command, sync_app

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def make_app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(sync_app, name="sync")
    app.command("export")(export_command)
    app.command("memory")(memory_command)
    return app


@pytest.fixture
def cli():
    app, runner = make_app(), CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project folder with a .codex/ directory."""
    (tmp_path / ".codex").mkdir()
    return tmp_path


def put(project: Path, fixture: str, target: str) -> Path:
    dest = project / target
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / fixture, dest)
    return dest


def snapshot(*paths: Path) -> dict[Path, tuple[bytes, int] | None]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) if p.exists() else None for p in paths}
