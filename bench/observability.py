"""What the telemetry hooks cost a skill run when nothing is exported (no OTLP endpoint set).

Run:  python bench/observability.py [--runs 2000] [--rounds 7] [--json]

One "run" is what a skill run does with telemetry: the run span and one attempt span per target
of the default chain (four), each checking and handing over a reply. With no endpoint these hooks
open no span (tests/observability/test_setup.py proves that); this prints what they still cost.
Figures are medians over `--rounds` rounds of `--runs` runs, interleaved with a baseline that does
the same work without the hooks (building the SkillRun and the reply checks), so the ratio
hooks/baseline holds up on a busy machine better than the absolute figure does.

Target: < 1 ms per run with telemetry off. Exit status 0 whatever the figures (a report, not a test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
    os.environ.pop(name, None)  # the figure is for "nothing exported"

from aios.observability import otel, telemetry  # noqa: E402
from aios.core.fallback import Attempt, AttemptStart, Outcome, Reply  # noqa: E402
from aios.core.policy import DEFAULT_TARGETS, FallbackPolicy  # noqa: E402
from aios.core.triage import Triage  # noqa: E402
from aios.providers.base import ModelRequest  # noqa: E402
from aios.runs.record import RunStatus, SkillRun  # noqa: E402

TARGET_MS = 1.0
POLICY = FallbackPolicy(targets=DEFAULT_TARGETS)
REQUEST = ModelRequest(system="s", prompt="p", schema_name="x", output_schema={"type": "object"})
REPLY = Reply(content="{}")


def with_hooks() -> None:
    run = SkillRun(run_id="r", skill="research-lead", triage=Triage.critical, status=RunStatus.failed)
    with telemetry.skill_run_span(run):
        attempts = telemetry.ModelAttempts(POLICY, REQUEST)
        for number, target in enumerate(POLICY.targets, 1):
            with attempts.before_attempt(AttemptStart(target, number)):
                attempts.on_attempt(Attempt(provider=target.provider, model=target.model, outcome=Outcome.ok), None, REPLY)


def without_hooks() -> None:
    SkillRun(run_id="r", skill="research-lead", triage=Triage.critical, status=RunStatus.failed)
    for _ in POLICY.targets:
        json.loads(REPLY.content)


def per_run_ms(fn: Callable[[], None], runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - started) / runs * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; medians are reported")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()

    otel.reset()
    tel = otel.setup()
    for fn in (with_hooks, without_hooks):
        per_run_ms(fn, 50)  # warm-up
    hooks, base = [], []
    for _ in range(args.rounds):
        base.append(per_run_ms(without_hooks, args.runs))
        hooks.append(per_run_ms(with_hooks, args.runs))
    figures = {
        "hooks_ms_per_run": round(statistics.median(hooks), 4),
        "baseline_ms_per_run": round(statistics.median(base), 4),
        "hooks_over_baseline": round(statistics.median(h / b for h, b in zip(hooks, base, strict=True)), 2),
        "target_ms": TARGET_MS,
        "tracing": tel.tracing,
        "runs": args.runs,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    figures["pass"] = figures["hooks_ms_per_run"] < TARGET_MS
    if not args.json:
        print(f"telemetry hooks, nothing exported: {figures['hooks_ms_per_run'] * 1000:.1f} µs per run "
              f"(baseline {figures['baseline_ms_per_run'] * 1000:.1f} µs, ×{figures['hooks_over_baseline']:g}); "
              f"target < {TARGET_MS:g} ms: {'PASS' if figures['pass'] else 'MISS'} "
              f"(median of {args.rounds} × {args.runs} runs; load {figures['loadavg_1m']:g} on {figures['cpus']} CPUs)")
    print(json.dumps({"benchmark": "observability", **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
