"""A drill's verdict: one row per expectation, figures per scenario, and the one renderer of both."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DrillCheck(BaseModel):
    """One expectation of one scenario about one subject, and whether it held."""

    scenario: str
    subject: str  # a skill name, or "alerts", "queue", "policy"
    expectation: str
    passed: bool
    detail: str = ""
    ms: float | None = None


class ScenarioReport(BaseModel):
    name: str
    checks: list[DrillCheck] = Field(default_factory=list)
    time_to_detect_ms: float | None = None
    time_to_failover_ms: float | None = None
    time_to_drain_ms: float | None = None
    alerts: int = 0
    skipped: str | None = None  # why the scenario did not run (e.g. a CLI it needs is not installed)

    @property
    def passed(self) -> bool:
        """A skipped scenario is not a failure of the drill: the report says it did not run, and why."""
        return all(c.passed for c in self.checks)

    def check(self, subject: str, expectation: str, passed: bool, detail: str = "", ms: float | None = None) -> None:
        self.checks.append(
            DrillCheck(scenario=self.name, subject=subject, expectation=expectation, passed=passed, detail=detail, ms=ms)
        )


class DrillReport(BaseModel):
    live: bool
    scenarios: list[ScenarioReport] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.scenarios) and all(s.passed for s in self.scenarios)

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "live": self.live,
            "scenarios": [{**s.model_dump(mode="json"), "passed": s.passed} for s in self.scenarios],
        }

    def markdown(self) -> str:
        """The verdict as Markdown: the artifact's text, and what `aios drill` prints."""
        lines = [f"# Fire drill: {'PASSED' if self.passed else 'FAILED'}", ""]
        lines += ["| scenario | detect ms | failover ms | drain ms | alerts | verdict |", "|---|---|---|---|---|---|"]
        for s in self.scenarios:
            lines.append(
                f"| {s.name} | {_fmt(s.time_to_detect_ms)} | {_fmt(s.time_to_failover_ms)} | {_fmt(s.time_to_drain_ms)} "
                f"| {s.alerts} | {'skipped' if s.skipped else _verdict(s.passed)} |"
            )
        lines += ["", "| scenario | subject | expectation | verdict | detail |", "|---|---|---|---|---|"]
        for s in self.scenarios:
            if s.skipped:
                lines.append(f"| {s.name} | - | not run | skipped | {s.skipped} |")
            for c in s.checks:
                lines.append(f"| {c.scenario} | {c.subject} | {c.expectation} | {_verdict(c.passed)} | {c.detail} |")
        return "\n".join(lines)


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f}"


def _verdict(passed: bool) -> str:
    return "pass" if passed else "FAIL"
