"""The validation matrix: every skill's runs on every target, each compared with one reference answer.

`aios validate` (flows/validate.py) runs each skill N times on each target through the same model
task as a real run; this module only judges the results (with `compare`) and shapes what is stored
and shown. Every answer of every target is compared with one *reference* answer: the first valid
answer of the first target (normally the primary), or of the next target that produced one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field, computed_field

from aios.errors import ConfigError
from aios.validation.compare import DEFAULT_TOLERANCE, CompareRule, Disagreement, compare_answers

VALIDATIONS_TABLE = "validations"
ARTIFACT_KEY = "cross-model-validation"


class RunSample(BaseModel):
    """One run of one skill on one target: a valid answer, or the error class of the failed chain."""

    ok: bool
    output: dict[str, Any] | None = None
    error_class: str | None = None
    message: str | None = None
    ms: float = 0.0  # time spent calling the model (every attempt of the run)
    input_tokens: int = 0
    output_tokens: int = 0


class Cell(BaseModel):
    """One skill on one target: pass rate, speed, cost and agreement with the reference answer."""

    skill: str
    target: str
    compare: str = "all"
    runs: int
    passed: int
    mean_latency_ms: float | None = None
    tokens_in: int | None = None  # mean per answered run
    tokens_out: int | None = None
    errors: list[str] = Field(default_factory=list)  # error class of each failed run
    disagreement_details: list[Disagreement] = Field(default_factory=list)
    reference: str | None = None  # target whose answer this cell was compared with

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pass_rate(self) -> float:
        return round(self.passed / self.runs, 4) if self.runs else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def disagreements(self) -> int:
        return len(self.disagreement_details)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return self.runs > 0 and self.passed == self.runs and not self.disagreement_details

    def problems(self) -> list[str]:
        """Short human lines on why the cell fails (empty when ok)."""
        out = []
        if self.runs and self.passed < self.runs:
            counts: dict[str, int] = {}
            for e in self.errors:
                counts[e] = counts.get(e, 0) + 1
            out.append(
                f"{self.runs - self.passed}/{self.runs} run(s) failed: "
                + ", ".join(f"{k} x{v}" if v > 1 else k for k, v in counts.items())
            )
        seen: set[str] = set()
        for d in self.disagreement_details:
            line = f"{d.path}: {d.detail}"
            if line not in seen:
                seen.add(line)
                out.append(line)
        return out


def build_cells(
    skill: str,
    samples: Mapping[str, list[RunSample]],
    schema: Mapping[str, Any] | None = None,
    rule: CompareRule | str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[Cell]:
    """One cell per target (in `samples` order), each run compared with the reference answer."""
    if not isinstance(rule, CompareRule):
        rule = CompareRule.parse(rule)
    reference_target: str | None = None
    reference: dict[str, Any] | None = None
    for target, runs in samples.items():
        first = next((s for s in runs if s.ok and s.output is not None), None)
        if first is not None:
            reference_target, reference = target, first.output
            break
    cells = []
    for target, runs in samples.items():
        details: list[Disagreement] = []
        if reference is not None and rule.mode != "none":
            for sample in runs:
                if sample.ok and sample.output is not None and sample.output is not reference:
                    details += compare_answers(reference, sample.output, schema, rule, tolerance)
        answered = [s for s in runs if s.ok]
        cells.append(
            Cell(
                skill=skill,
                target=target,
                compare=rule.text,
                runs=len(runs),
                passed=len(answered),
                mean_latency_ms=round(sum(s.ms for s in runs) / len(runs), 1) if runs else None,
                tokens_in=round(sum(s.input_tokens for s in answered) / len(answered)) if answered else None,
                tokens_out=round(sum(s.output_tokens for s in answered) / len(answered)) if answered else None,
                errors=[s.error_class or "error" for s in runs if not s.ok],
                disagreement_details=details,
                reference=reference_target if rule.mode != "none" else None,
            )
        )
    return cells


class Matrix(BaseModel):
    """Skill x target: what `aios validate` prints, stores and gates CI on."""

    cells: list[Cell] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return bool(self.cells) and all(c.ok for c in self.cells)

    def failed(self) -> list[Cell]:
        return [c for c in self.cells if not c.ok]

    def to_json(self) -> dict[str, Any]:
        """The `aios validate --json` shape: {"cells": [...], "ok": bool}."""
        return {"cells": [cell_json(c) for c in self.cells], "ok": self.ok}

    def table_rows(self) -> list[dict[str, Any]]:
        """Flat rows for the Prefect table artifact."""
        return [
            {
                "skill": c.skill,
                "target": c.target,
                "status": "pass" if c.ok else "FAIL",
                "pass_rate": f"{c.passed}/{c.runs}",
                "mean_latency_ms": c.mean_latency_ms,
                "tokens_in": c.tokens_in,
                "tokens_out": c.tokens_out,
                "disagreements": c.disagreements,
                "detail": "; ".join(c.problems())[:500],
            }
            for c in self.cells
        ]


def cell_json(cell: Cell) -> dict[str, Any]:
    data = cell.model_dump(mode="json")
    data["disagreement_details"] = [str(d) for d in cell.disagreement_details]
    return data


def record_of(cell: Cell, validated_at: str, flow_run_id: str | None = None) -> dict[str, Any]:
    """What the state store keeps per `skill:target` (read back by `aios doctor`)."""
    return {
        "skill": cell.skill,
        "target": cell.target,
        "ok": cell.ok,
        "runs": cell.runs,
        "passed": cell.passed,
        "pass_rate": cell.pass_rate,
        "mean_latency_ms": cell.mean_latency_ms,
        "tokens_in": cell.tokens_in,
        "tokens_out": cell.tokens_out,
        "disagreements": cell.disagreements,
        "errors": cell.errors,
        "problems": cell.problems()[:10],
        "compare": cell.compare,
        "reference": cell.reference,
        "validated_at": validated_at,
        "flow_run_id": flow_run_id,
    }


def validation_key(skill: str, target: str) -> str:
    return f"{skill}:{target}"


def parse_targets(specs: str | Iterable[str] | None) -> list[str]:
    """`anthropic:m1,openai:m2` (or a list of such strings) -> ["anthropic:m1", "openai:m2"]."""
    if specs is None:
        return []
    parts = specs.split(",") if isinstance(specs, str) else [p for s in specs for p in str(s).split(",")]
    out = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        provider, sep, model = part.partition(":")
        if not sep or not provider.strip() or not model.strip():
            raise ConfigError("--targets", f"'{part}' is not of the form provider:model")
        out.append(f"{provider.strip()}:{model.strip()}")
    return list(dict.fromkeys(out))
