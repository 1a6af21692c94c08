"""Chaos soak (issue 13): ≥ 1,000 skill runs under random provider faults, Claude outages, state backend
throttling and outages, SIGKILLed drainers/workers and a Prefect server restart -- then an audit.

    python bench/soak.py [--runs 1000] [--seed 1] [--json]

Prints the audit: runs submitted; completed / deferred-then-completed / dropped / failed (each with a
record); lost, executed twice, duplicate state records, duplicate memory facts, schema-invalid outputs
persisted, journal entries left, canary keys found (all must be 0); paid model calls per completed
run; alerts per outage; wall time and runs/s. See bench/README.md ("soak").
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soak.driver import SoakConfig, run_soak  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--outages", type=int, default=4, help="Claude outages during the soak")
    parser.add_argument("--outage-min", type=float, default=5.0, help="seconds")
    parser.add_argument("--outage-max", type=float, default=60.0, help="seconds")
    parser.add_argument("--kills-every", type=int, default=100, help="SIGKILL a drainer or worker every N runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C: the stack's processes stop, its database is dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config = SoakConfig(
        runs=args.runs, seed=args.seed, outages=args.outages, outage_seconds=(args.outage_min, args.outage_max),
        kills_every=args.kills_every, verbose=not args.json,
    )
    report = run_soak(config)
    if args.json:
        print(json.dumps(report.summary()))
    else:
        print("\n".join(report.lines()))


if __name__ == "__main__":
    main()
