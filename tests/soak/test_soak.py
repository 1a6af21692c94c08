"""A small chaos soak (issue 13): ≥ 100 skill runs under the soak's whole fault schedule, then its audit.

It runs `bench/soak.py` in its own process, which starts its OWN stack: emulators and a Prefect server on
its own PostgreSQL database (`aios_soak_<pid>`, dropped at the end; databases of dead soaks go first).
Why not the session's server (tests/conftest.py): the soak restarts its Prefect server half-way and
SIGKILLs the workers it races against, and it audits every run the server knows of -- on the shared
server that would break the other tests' runs, and their runs would cloud the audit. Its own process
also keeps its settings (canary keys, short timeouts, the state backends) out of this session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = 100
pytestmark = [pytest.mark.e2e, pytest.mark.soak]


def test_a_small_chaos_soak_loses_nothing_and_does_nothing_twice():
    """Every submitted run ends with an aios record; each figure the issue requires to be 0 is 0.

    The schedule is the full soak's: per-request provider faults on every model, two Claude outages
    (short, so the test stays short), Sheets/Airtable throttling and outages, the process worker (at run
    25) and a drainer (at run 75) SIGKILLed with the runs they held, and one Prefect server restart.
    """
    proc = subprocess.Popen(
        [sys.executable, "bench/soak.py", "--runs", str(RUNS), "--seed", "13", "--outages", "2",
         "--outage-min", "4", "--outage-max", "8", "--kills-every", "50", "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=3600)  # a guard against a hang, not a speed check
    except subprocess.TimeoutExpired:
        proc.terminate()  # the soak stops its stack and drops its database on SIGTERM
        stdout, stderr = proc.communicate(timeout=120)
        pytest.fail(f"the soak did not finish in an hour:\n{stderr[-3000:]}")
    assert proc.returncode == 0, stderr[-3000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["zero_lines"] == {name: 0 for name in report["zero_lines"]}, report
    assert report["submitted"] == RUNS and report["known_to_prefect"] == RUNS, report
    assert sum(report["outcomes"].values()) == RUNS, report  # each run has exactly one terminal record
    assert report["kills"].get("drainer", 0) >= 1 and report["kills"].get("worker", 0) >= 1, report
    assert report["restarts"] == 1, report
    assert report["outcomes"]["completed"] + report["outcomes"]["deferred-then-completed"] > 0, report
