"""Where a soak's wall time goes: how long each phase took, CPU seconds by kind of process, and the runs'
queue waits and durations as the Prefect API recorded them (worker runs apart from in-process ones).

Beside other sessions' load the soak is bound by CPU, so CPU seconds per run and per process say what to
cut; alone on the machine it used under one of 2 cores, and the phases and waits say where it idles.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.cpu import cpu_seconds

TICK = os.sysconf("SC_CLK_TCK")


def own_and_reaped_cpu(pid: int) -> float:
    """User + system CPU of a process and of the children it has reaped; 0 for a process gone."""
    return cpu_seconds(pid) + cpu_seconds(pid, children=True)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (every process on the machine, ours or not)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK  # minus idle and iowait


@dataclass
class Costs:
    phases: list[tuple[str, float, float]] = field(default_factory=list)  # name, seconds, 1-min load at its end
    cpu: Counter = field(default_factory=Counter)  # CPU seconds by kind of process
    busy_at_start: float = field(default_factory=machine_busy_seconds)
    started: float = field(default_factory=time.monotonic)
    last_mark: float = field(default_factory=time.monotonic)

    def mark(self, phase: str) -> None:
        """`phase` ends now (it began at the previous mark)."""
        now = time.monotonic()
        self.phases.append((phase, now - self.last_mark, os.getloadavg()[0]))
        self.last_mark = now

    def charge(self, kind: str, pid: int) -> None:
        """Add the CPU of a process and of every live process below it (call just before it ends)."""
        from aios.drill.stack import descendants

        self.cpu[kind] += own_and_reaped_cpu(pid) + sum(own_and_reaped_cpu(p) for p in descendants(pid))

    def charge_postgres(self, database: str) -> None:
        """The CPU of the PostgreSQL backends serving `database` now (those of closed connections are gone)."""
        from aios.drill.stack import _admin

        for pid in _admin(f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'"):
            self.cpu["PostgreSQL (open connections)"] += own_and_reaped_cpu(int(pid))

    def lines(self, runs: int) -> list[str]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu["driver (submissions, chaos, status checks, audit)"] += own.ru_utime + own.ru_stime
        wall = time.monotonic() - self.started
        busy = machine_busy_seconds() - self.busy_at_start
        out = ["phases (1-min load at the end of each): " + ", ".join(f"{name} {seconds:.0f} s ({load:.1f})" for name, seconds, load in self.phases) + f"; all {wall:.0f} s"]
        ours = sum(self.cpu.values())
        out.append(
            f"CPU: {busy:.0f} s busy on the machine ({busy / wall:.2f} cores of {os.cpu_count()}), {busy / runs:.2f} s per run; "
            + ", ".join(f"{kind} {s:.0f} s" for kind, s in self.cpu.most_common())
            + f"; the rest (PostgreSQL, other sessions) {busy - ours:.0f} s"
        )
        return out


def run_latencies(flow_runs: list) -> list[str]:
    """Queue wait (scheduled to Running) and run time (Running to its end) of the skill runs, by executor."""
    groups: dict[str, list] = {}
    for r in flow_runs:
        if r.start_time and r.end_time and r.expected_start_time:
            kind = "process worker" if r.infrastructure_pid else "in-process"
            groups.setdefault(f"{kind}, {r.work_queue_name} queue", []).append(r)
    out = []
    for name, runs in sorted(groups.items()):
        waits = sorted((r.start_time - r.expected_start_time).total_seconds() for r in runs)
        spans = sorted((r.end_time - r.start_time).total_seconds() for r in runs)
        out.append(
            f"{name}: {len(runs)} runs; waited median {statistics.median(waits):.1f} s (p90 {_p90(waits):.1f}), "
            f"ran median {statistics.median(spans):.1f} s (p90 {_p90(spans):.1f})"
        )
    return out


def _p90(values: list[float]) -> float:
    return values[min(len(values) - 1, int(0.9 * len(values)))]
