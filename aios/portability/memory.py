"""Memory: durable facts that skills learn, kept as Markdown bullets in `memory/learned.md`.

This is the pure merge half of memory extraction. The model call that extracts facts from a run
asks for `FACTS_SCHEMA` (see `extraction_prompt`), turns the answer into `Fact`s with
`facts_from_output`, and hands them to `merge_facts`:

    - <text> (source: <skill> run <run id>, <YYYY-MM-DD>)

Duplicates are skipped by normalised text (case, whitespace and trailing punctuation ignored),
so merging the same facts twice changes nothing. The file is rewritten atomically under a lock
(`memory/.<file>.lock`) as its old bytes plus the new bullets, in the file's own line endings;
a link is written through (the file it points to is updated), and a file that changed between
reading and writing is read again rather than overwritten. `recent_facts` reads the bullets back in file order, oldest first, and
returns the last `limit` (the most recent is last).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aios.errors import ConfigError
from aios.files import atomic_write_text, read_user_text_or_none

DEFAULT_FILE = "learned.md"
HEADER = (
    "# Learned facts\n\n"
    "<!-- Facts skills learn over time are appended here by `aios` (memory extraction), "
    "one per line, with their source run. -->\n"
)
MAX_FACT_CHARS = 500

FACTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "description": "Durable facts about the business, its customers or its market worth remembering "
            "for future runs; one short sentence each. Empty if nothing new was learned.",
            "items": {"type": "string"},
        }
    },
    "required": ["facts"],
    "additionalProperties": False,
}

_BULLET = re.compile(r"^\s*[-*]\s+(?P<body>.+?)\s*$")
_SOURCE = re.compile(
    r"^(?P<text>.*?)\s*\(source:\s*(?P<skill>[^,()]*?)(?:\s+run\s+(?P<run>[^,()]+?))?\s*"
    r"(?:,\s*(?P<date>\d{4}-\d{2}-\d{2}))?\s*\)$"
)


def _today() -> date:
    return datetime.now(UTC).date()


class Fact(BaseModel):
    """One durable fact and where it came from."""

    model_config = ConfigDict(frozen=True)

    text: str
    source_run: str = ""
    skill: str = ""
    learned_at: date | None = Field(default_factory=_today)

    @field_validator("text")
    @classmethod
    def _one_line(cls, value: str) -> str:
        text = " ".join(value.split()).removeprefix("- ").strip()
        if not text:
            raise ValueError("a fact needs some text")
        return text[:MAX_FACT_CHARS]

    @field_validator("skill", "source_run")
    @classmethod
    def _no_parens(cls, value: str) -> str:
        return " ".join(re.sub(r"[(),]", " ", value).split())

    @field_validator("learned_at", mode="before")
    @classmethod
    def _date_only(cls, value: Any) -> Any:
        return value.date() if isinstance(value, datetime) else value

    def bullet(self) -> str:
        source = self.skill or "unknown"
        if self.source_run:
            source += f" run {self.source_run}"
        when = (self.learned_at or _today()).isoformat()
        return f"- {self.text} (source: {source}, {when})"


def normalise(text: str) -> str:
    """The form duplicates are compared in: case-folded, single spaces, no trailing punctuation."""
    return " ".join(text.casefold().split()).rstrip(" .!?;:,…")


def parse_bullet(line: str) -> Fact | None:
    """A bullet line back into a Fact (None for anything that is not a bullet)."""
    m = _BULLET.match(line)
    if not m:
        return None
    body = m.group("body")
    src = _SOURCE.match(body)
    try:
        if not src:
            return Fact(text=body, learned_at=None)
        when = date.fromisoformat(src.group("date")) if src.group("date") else None
        return Fact(text=src.group("text"), skill=src.group("skill") or "", source_run=src.group("run") or "", learned_at=when)
    except (ValidationError, ValueError):
        return None


def _read_facts(path: Path) -> list[Fact]:
    facts, fenced = [], False
    for line in (read_user_text_or_none(path) or "").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (fact := parse_bullet(line)):
            facts.append(fact)
    return facts


def merge_facts(memory_dir: Path | str, facts: list[Fact], file: str = DEFAULT_FILE) -> list[Fact]:
    """Append the facts not already in `memory_dir/file`; return the ones added (in order)."""
    memory_dir = Path(memory_dir)
    memory_dir.mkdir(parents=True, exist_ok=True)
    path = (memory_dir / file).resolve()  # through a link: update the file it points to, keep the link
    with FileLock(str(memory_dir / f".{file}.lock"), timeout=30):
        for _ in range(5):
            old = _read_bytes(path)
            added = _new_facts(path, facts)
            if not added:
                return []
            text = HEADER if old is None else old.decode("utf-8")
            newline = "\r\n" if "\r\n" in text else "\n"
            if text and not text.endswith("\n"):
                text += newline
            text += "".join(fact.bullet() + newline for fact in added)
            if _read_bytes(path) == old:  # nobody wrote it meanwhile (another editor does not take our lock)
                atomic_write_text(path, text)
                return added
    raise ConfigError(path, "keeps changing while aios appends to it; try again")


def _read_bytes(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text") from None
    return data


def _new_facts(path: Path, facts: list[Fact]) -> list[Fact]:
    """The facts not yet in the file (nor repeated earlier in `facts`), dated today if undated."""
    known = {normalise(f.text) for f in _read_facts(path)}
    added: list[Fact] = []
    for fact in facts:
        key = normalise(fact.text)
        if not key or key in known:
            continue
        known.add(key)
        if fact.learned_at is None:
            fact = fact.model_copy(update={"learned_at": _today()})
        added.append(fact)
    return added


def recent_facts(memory_dir: Path | str, limit: int = 20, file: str = DEFAULT_FILE) -> list[Fact]:
    """The last `limit` bullets of `memory_dir/file`, oldest first (the most recent is last)."""
    facts = _read_facts(Path(memory_dir) / file)
    return facts[-limit:] if limit > 0 else []


def facts_from_output(output: Any, *, skill: str, source_run: str, learned_at: date | datetime | None = None) -> list[Fact]:
    """The extraction call's answer (`FACTS_SCHEMA`) -> Facts; blank or malformed entries are skipped."""
    items = output.get("facts", []) if isinstance(output, dict) else []
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str) and item.strip():
            out.append(Fact(text=item, skill=skill, source_run=source_run, learned_at=learned_at or _today()))
    return out


def extraction_prompt(skill: str, run_output: Any, known: list[Fact]) -> str:
    """The instruction for the extraction call (answer with FACTS_SCHEMA)."""
    known_lines = "\n".join(f"- {f.text}" for f in known) or "(none yet)"
    return (
        f"The skill '{skill}' just produced the output below. List durable facts it reveals about our "
        "business, customers or market that would help future runs: one short, self-contained sentence "
        "each, no personal data beyond a company name, nothing temporary, nothing already known. "
        "Answer with an empty list if there is nothing new.\n\n"
        f"Already known:\n{known_lines}\n\nOutput:\n{run_output}"
    )
