"""A small chaos soak: 100 runs under the whole fault schedule, one SIGKILL per 50 runs, one server restart.

The audit reads only the Prefect API, the state stores and the emulators' logs (bench/soak/audit.py).
Known failures, found by this soak (see bench/README.md, "soak"):
  - executed twice: the drainer's PENDING claim is accepted from a run that already finished as
    Completed("Deferred") (skill flows do not persist results, so Prefect lets a Completed run go
    back to Pending); the stale run is executed a second time (aios/outage/drainer.py).
  - runs SIGKILLed with their process stay Running/Pending or end Crashed with no aios record, and
    nothing re-runs them (no crash recovery in aios/outage).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.soak.audit import TERMINAL  # noqa: E402
from bench.soak.driver import SoakConfig, run_soak  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def soak_report():
    config = SoakConfig(
        runs=100, seed=13, outages=2, outage_seconds=(3.0, 6.0), kills_every=50, settle_seconds=90,
        check_seconds=2.0, database="aios_soak_test", verbose=False,
    )
    return run_soak(config)


def test_every_submitted_run_is_known_to_prefect(soak_report):
    assert soak_report.known_to_prefect == soak_report.submitted == 100


@pytest.mark.xfail(reason="soak finds runs killed with their process and never re-run (no crash recovery in aios/outage)", strict=False)
def test_every_submitted_run_ends_with_a_terminal_record(soak_report):
    assert sum(soak_report.outcomes[name] for name in TERMINAL) == soak_report.submitted, soak_report.lines()


def test_no_duplicate_records_no_invalid_outputs_no_journal_left_no_leaked_keys(soak_report):
    zero = soak_report.zero_lines
    figures = {k: zero[k] for k in (
        "duplicate state records", "duplicate memory facts", "schema-invalid outputs persisted",
        "journal entries left after recovery", "canary API keys found in logs, state, artifacts and spans",
    )}
    assert figures == dict.fromkeys(figures, 0), soak_report.lines()


@pytest.mark.xfail(reason="soak finds runs killed with their process and never re-run, and a finished parked run the "
                   "drainer claims and executes again (aios/outage/drainer.py)", strict=False)
def test_nothing_lost_nothing_executed_twice(soak_report):
    zero = soak_report.zero_lines
    figures = {k: zero[k] for k in ("lost (no terminal record)", "ended by Prefect only (Crashed/Failed, no aios record)", "executed twice")}
    assert figures == dict.fromkeys(figures, 0), soak_report.lines()
