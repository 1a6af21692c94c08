"""Skills: `skills/<name>/SKILL.md` in the Agent Skills format, plus an output contract.

The front matter keeps to the rules Claude Code and Codex both check (`name`, `description`,
`metadata` as a string-to-string map), so the same folder works unchanged in either tool. Our own
keys live under `metadata`:

    triage:   critical | defer | drop          (default critical)
    schedule: a cron expression                (optional)
    models:   "anthropic:claude-sonnet-4-5, openai:gpt-5-mini"  (optional; overrides the policy)
    contract: output.schema.json | python:pkg.module:Model    (default output.schema.json)
    memory:   "true" to extract durable facts after a run     (default false)
    compare:  comparison rule for cross-model validation      (optional)
    source:   "leads where status = new": work on these records (optional; see aios/core/workflow.py)
    updates:  "status, fit, score, next_step": the only fields an answer writes back (with source)
    steps:    "research, qualify, draft": ordered steps, each `steps/<step>.md` + `steps/<step>.schema.json`
    batch:    most records one scheduled run takes          (default 10)
    concurrency: records worked on at once                  (default 4)
    reads:    "leads where status = qualified": records given to the skill as its input `<table>`
              (read-only: a report reads many records and writes none of them)
    deadline: "10m": bounds a whole run across all targets; an agent CLI target's read timeout follows it

Sample inputs (so every skill runs with none given) sit in `inputs.json` beside SKILL.md.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aios.core.policy import Deadline
from aios.core.triage import Triage
from aios.core.workflow import SINGLE_STEP, Selection, WritePlan, parse_fields, parse_names
from aios.errors import ConfigError

SKILL_FILE = "SKILL.md"
INPUTS_FILE = "inputs.json"
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class TargetSpec(BaseModel):
    """One `provider:model` entry of a skill's model preference."""

    model_config = ConfigDict(frozen=True)
    provider: str
    model: str

    @classmethod
    def parse(cls, text: str) -> TargetSpec:
        provider, sep, model = text.strip().partition(":")
        if not sep or not provider or not model:
            raise ValueError(f"'{text.strip()}' is not of the form provider:model")
        return cls(provider=provider.strip(), model=model.strip())

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


class SkillMetadata(BaseModel):
    """Our keys under the front matter's `metadata` (all strings there, typed here)."""

    model_config = ConfigDict(extra="allow")

    triage: Triage = Triage.critical
    schedule: str | None = None
    models: list[TargetSpec] = Field(default_factory=list)
    contract: str = "output.schema.json"
    memory: bool = False
    compare: str | None = None
    source: Selection | None = None
    updates: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    batch: int = Field(default=10, ge=1, le=1000)
    concurrency: int = Field(default=4, ge=1, le=32)
    reads: Selection | None = None
    deadline: Deadline | None = None

    @field_validator("source", "reads", mode="before")
    @classmethod
    def _parse_source(cls, value: Any) -> Any:
        return Selection.parse(value) if isinstance(value, str) else value

    @field_validator("updates", mode="before")
    @classmethod
    def _parse_updates(cls, value: Any) -> Any:
        return parse_fields(value) if isinstance(value, str) else value

    @field_validator("steps", mode="before")
    @classmethod
    def _parse_steps(cls, value: Any) -> Any:
        return parse_names(value, "step") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _records_need_a_source(self) -> SkillMetadata:
        if (self.updates or self.steps) and self.source is None:
            raise ValueError("updates and steps work on records: set metadata.source (e.g. 'leads where status = new')")
        if self.source is not None and not self.updates:
            raise ValueError("a skill with a source names the fields its answer writes in metadata.updates")
        return self

    @property
    def step_names(self) -> tuple[str, ...]:
        """The steps a records run works through: those declared, else the one step `answer`."""
        return self.steps or (SINGLE_STEP,)

    def write_plan(self) -> WritePlan | None:
        """What a records run may write, or None for a skill that works on inputs only."""
        if self.source is None:
            return None
        return WritePlan(table=self.source.table, updates=self.updates, steps=self.steps)

    @field_validator("models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [TargetSpec.parse(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("schedule")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=value)
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"'{value}' is not a valid cron expression") from exc
        return value


class FrontMatter(BaseModel):
    """The Agent Skills front matter, with the limits both tools enforce."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(max_length=64)
    description: str = Field(min_length=1, max_length=1024)
    license: str | None = None
    compatibility: str | None = Field(default=None, max_length=500)
    allowed_tools: str | list[str] | None = Field(default=None, alias="allowed-tools")
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("must be lowercase letters, digits and single hyphens")
        return value

    @field_validator("metadata", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # YAML turns `memory: true` into a bool; the format wants strings, so store them as such.
        if isinstance(value, dict):
            return {str(k): _as_string(v) for k, v in value.items()}
        return value


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


class Step(BaseModel):
    """One step of a multi-step skill: its instructions and its own output contract."""

    model_config = ConfigDict(frozen=True)

    name: str
    instructions: str
    output_schema: dict[str, Any]


class Skill(BaseModel):
    """A loaded, validated skill: everything a run needs, nothing provider-specific."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    metadata: SkillMetadata
    front_matter: FrontMatter
    instructions: str
    folder: Path
    output_schema: dict[str, Any]
    default_inputs: dict[str, Any] = Field(default_factory=dict)
    steps: tuple[Step, ...] = ()

    @property
    def triage(self) -> Triage:
        return self.metadata.triage

    @property
    def path(self) -> Path:
        return self.folder / SKILL_FILE

    def inputs(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Sample inputs with the caller's values on top (the samples fill what is not given)."""
        return {**self.default_inputs, **(overrides or {})}

    def check_inputs(self, given: dict[str, Any]) -> None:
        """A skill declares its inputs in `inputs.json`; a value for anything else is a typo, not an input."""
        unknown = sorted(set(given) - set(self.default_inputs))
        if unknown:
            declared = ", ".join(sorted(self.default_inputs)) or f"none (it has no {INPUTS_FILE})"
            raise ConfigError(
                "--input",
                f"skill '{self.name}' has no input {', '.join(repr(k) for k in unknown)}; it declares: {declared}",
            )


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    """Return (front matter mapping, markdown body) or raise a one-line ConfigError."""
    if not text.startswith("---"):
        raise ConfigError(path, "missing YAML front matter (the file must start with '---')")
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        raise ConfigError(path, "front matter is not closed by a '---' line")
    head, body = parts[0][3:], parts[1]
    try:
        data = yaml.safe_load(head) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 2}" if mark else ""
        raise ConfigError(path, f"front matter is not valid YAML{line}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "front matter must be a YAML mapping")
    return data, body.lstrip("\n").removeprefix("-").lstrip("\n")


def _first_error(exc: ValidationError, prefix: str = "") -> tuple[str, str]:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    return (f"{prefix}{field}" if field else prefix.rstrip(".") or "(root)"), message


def load_skill(folder: Path | str) -> Skill:
    """Load and validate one skill folder; every problem is one line naming file and field.

    Cached per folder while none of its files changes (path, size, times of every file): a run
    loads its skill several times (preflight, flow, steps), a kept runner once per edit.
    """
    folder = Path(folder)
    stamp = _folder_stamp(folder)
    cached = _LOADED.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    skill = _load_skill(folder)
    _LOADED[folder] = (stamp, skill)
    return skill


_LOADED: dict[Path, tuple[tuple, Skill]] = {}  # folder -> (its files' stamp, the skill loaded from them)


def _folder_stamp(folder: Path) -> tuple:
    """What changes when any file of the folder is added, removed or written."""
    stamp = []
    for path in sorted(folder.rglob("*")):
        try:
            st = path.stat()
        except OSError:
            continue
        stamp.append((str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(stamp)


def _load_skill(folder: Path) -> Skill:
    path = folder / SKILL_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text") from None
    data, body = split_front_matter(text, path)
    try:
        front = FrontMatter.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, *reversed(_first_error(exc))) from None
    if front.name != folder.name:
        raise ConfigError(path, f"'{front.name}' must equal its folder name '{folder.name}'", "name")
    try:
        meta = SkillMetadata.model_validate(front.metadata)
    except ValidationError as exc:
        raise ConfigError(path, *reversed(_first_error(exc, "metadata."))) from None
    return Skill(
        name=front.name,
        description=front.description,
        metadata=meta,
        front_matter=front,
        instructions=body.strip(),
        folder=folder,
        output_schema=load_contract(folder, meta.contract),
        default_inputs=_load_inputs(folder),
        steps=tuple(_load_step(folder, name) for name in meta.steps),
    )


def _load_step(folder: Path, name: str) -> Step:
    """`steps/<name>.md` (instructions) and `steps/<name>.schema.json` (its contract)."""
    path = folder / "steps" / f"{name}.md"
    try:
        instructions = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(path, f"step '{name}' is named in metadata.steps but has no instructions file") from None
    if not instructions:
        raise ConfigError(path, "the step's instructions are empty")
    return Step(name=name, instructions=instructions, output_schema=load_contract(folder, f"steps/{name}.schema.json"))


def load_contract(folder: Path, contract: str) -> dict[str, Any]:
    """The output contract as a JSON Schema, from a file or a Pydantic model."""
    if contract.startswith("python:"):
        target = contract.removeprefix("python:")
        module_name, _, attr = target.partition(":")
        try:
            model = getattr(importlib.import_module(module_name), attr)
            return model.model_json_schema()
        except (ImportError, AttributeError) as exc:
            raise ConfigError(folder / SKILL_FILE, f"cannot load Pydantic model '{target}': {exc}", "metadata.contract") from None
    path = folder / contract
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "output contract not found (set metadata.contract in SKILL.md)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(schema, dict):
        raise ConfigError(path, "a JSON Schema must be an object")
    problem = _schema_problem(json.dumps(schema, sort_keys=True))
    if problem:
        raise ConfigError(path, problem)
    if schema.get("type") != "object":
        raise ConfigError(path, "the output contract must describe a JSON object (type: object)")
    return schema


@functools.lru_cache(maxsize=256)
def _schema_problem(schema_json: str) -> str | None:
    """Checking a schema against the metaschema is most of a skill's load time: once per distinct schema."""
    try:
        Draft202012Validator.check_schema(json.loads(schema_json))
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"not a valid JSON Schema at {where}: {exc.message}"
    return None


def _load_inputs(folder: Path) -> dict[str, Any]:
    path = folder / INPUTS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "sample inputs must be a JSON object")
    return data


def load_skills(root: Path | str) -> list[Skill]:
    """Every skill under `root`, sorted by name (a broken one raises its one-line error)."""
    root = Path(root)
    return [load_skill(p.parent) for p in sorted(root.glob(f"*/{SKILL_FILE}"))]


def find_skill(root: Path | str, name: str) -> Skill:
    folder = Path(root) / name
    if not (folder / SKILL_FILE).exists():
        known = ", ".join(p.parent.name for p in sorted(Path(root).glob(f"*/{SKILL_FILE}"))) or "none"
        raise ConfigError(Path(root), f"no skill named '{name}' (known: {known})")
    return load_skill(folder)


def parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """`--input key=value` pairs; values that parse as JSON (numbers, lists) keep their type."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError("--input", f"'{pair}' is not of the form key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
