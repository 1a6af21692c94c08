"""Prompt context: `knowledge/*.md` and `memory/*.md` assembled into the same instructions for every provider.

Order is stable (knowledge before memory, files by name) so every model sees the same text. The
size guard refuses oversized knowledge (a human must trim it) and trims memory oldest-first (it grows
by itself, and a run must not fail because the system learned too much).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from aios.errors import ConfigError
from aios.files import read_user_text


class PromptContext(BaseModel):
    text: str
    files: list[str]
    trimmed_memory_lines: int = 0


def _read_all(folder: Path) -> list[tuple[str, str]]:
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.md")):
        out.append((f"{folder.name}/{path.name}", read_user_text(path).strip()))
    return out


def assemble_context(home: Path, max_chars: int, memory_dir: Path | None = None) -> PromptContext:
    knowledge = _read_all(home / "knowledge")
    memory = _read_all(memory_dir or home / "memory")
    sections = [f"<!-- {name} -->\n{text}" for name, text in knowledge]
    used = sum(len(s) for s in sections)
    if used > max_chars:
        biggest = max(knowledge, key=lambda kv: len(kv[1]))[0]
        raise ConfigError(
            home / "knowledge",
            f"{used} characters exceed the context budget of {max_chars} (AIOS_CONTEXT_MAX_CHARS); largest file: {biggest}",
        )
    trimmed = 0
    for name, text in memory:
        lines = text.splitlines()
        while lines and used + len("\n".join(lines)) + len(name) + 10 > max_chars:
            # Drop the oldest fact (first bullet after any heading) until memory fits.
            idx = next((i for i, line in enumerate(lines) if line.startswith("- ")), 0)
            lines.pop(idx)
            trimmed += 1
        if lines:
            section = f"<!-- {name} -->\n" + "\n".join(lines)
            sections.append(section)
            used += len(section)
    return PromptContext(
        text="\n\n".join(sections),
        files=[name for name, _ in knowledge + memory],
        trimmed_memory_lines=trimmed,
    )
