"""`aios run` wall time on a kept server (`aios server start`) versus Prefect's temporary server.

    python bench/kept_server.py [--runs 4] [--no-temporary]

Copies the project to a temporary folder, starts the emulators, starts the kept server there with
`aios server start --no-ui`, then times `aios run research-lead` as a user would (a fresh process
each time): wall seconds and the CPU seconds of the process. With the server up, `aios run` goes to
the warm runner `aios server start` starts beside it (aios/runs/runner.py). The first run against the server is
shown apart (it creates the flow); the goal is for the second and later runs. With no kept server
Prefect starts a temporary one per command: that case runs once for comparison. Other load on the
machine inflates every figure: the 1-minute load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
AIOS = Path(sys.executable).parent / "aios"
GOAL_S = 2.0
PROJECT_FILES = ("skills", "knowledge", "memory", "AGENTS.md", "CLAUDE.md", "prefect.yaml")


def timed_run(env: dict, cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one `aios run research-lead` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([str(AIOS), "run", "research-lead", "--json"], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"aios run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="runs against the kept server (the first is shown apart)")
    parser.add_argument("--no-temporary", action="store_true", help="skip the run on Prefect's temporary server")
    args = parser.parse_args()

    from aios.drill.stack import LocalStack

    workdir = Path(tempfile.mkdtemp(prefix="aios-bench-kept-"))
    project = workdir / "project"
    project.mkdir()
    for name in PROJECT_FILES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, project / name)
    try:
        with LocalStack(project=project, with_prefect=False, workdir=workdir / "stack") as stack:
            env = {k: v for k, v in stack.env.items() if not k.startswith(("PREFECT_", "AIOS_STATE_", "AIOS_MEMORY_"))}
            env |= {"AIOS_MEMORY_EXTRACTION": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
            load = os.getloadavg()[0]
            if not args.no_temporary:
                wall, cpu = timed_run(env, project)
                print(f"no kept server (Prefect's temporary server): {wall:6.2f} s wall, {cpu:5.2f} s CPU", flush=True)
            started = time.perf_counter()
            subprocess.run([str(AIOS), "server", "start", "--no-ui"], env=env, cwd=project, check=True, capture_output=True, timeout=600)
            print(f"aios server start:                           {time.perf_counter() - started:6.2f} s wall (once)", flush=True)
            try:
                samples = [timed_run(env, project) for _ in range(args.runs)]
            finally:
                subprocess.run([str(AIOS), "server", "stop"], env=env, cwd=project, capture_output=True, timeout=120)
            (first_wall, first_cpu), later = samples[0], samples[1:]
            print(f"kept server, first run:                      {first_wall:6.2f} s wall, {first_cpu:5.2f} s CPU", flush=True)
            for i, (wall, cpu) in enumerate(later, 2):
                print(f"kept server, run {i}:                          {wall:6.2f} s wall, {cpu:5.2f} s CPU", flush=True)
            if later:
                median = statistics.median(w for w, _ in later)
                verdict = "PASS" if median <= GOAL_S else "MISS"
                print(f"second and later runs, median wall: {median:.2f} s   goal ≤ {GOAL_S:g} s: {verdict}   "
                      f"(median CPU {statistics.median(c for _, c in later):.2f} s; 1-min load average {load:.1f} → "
                      f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
