"""User-facing errors: each renders as one line naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class AiosError(Exception):
    """Base for errors the CLI prints as a single line, never as a traceback."""


class ConfigError(AiosError):
    """A file the user wrote (SKILL.md, schema, settings, MCP config) is broken."""

    def __init__(self, path: Path | str, problem: str, field: str | None = None) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        where = f"{self.path}: {field}" if field else self.path
        super().__init__(f"{where}: {problem}")
