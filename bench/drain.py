"""Drain benchmark: park N deferred runs, recover, and time how fast the deferred queue drains.

    python bench/drain.py [--runs 200] [--json]
    python bench/drain.py --workers 1,2,4     # process-worker sweep: runs/s for 1, 2 and 4 workers
    python bench/drain.py --modes drainer --profile drain.prof   # where the drainer's event loop spends a run

Prints, per way of draining, the time to drain, runs/s, and the lost and duplicated counts:
  - process worker ×N (Prefect's process worker: one Python process per run, --limit 4 each, polling every
    1 s): the runs are parked, the N workers started and polling the paused queue, then the queue is
    resumed; timed from the resume to the last run's end, with the runs each worker executed
  - in-process drainer (`aios drain`: claims parked runs and runs them concurrently in one process)
Runs against a local stack with a Prefect server on PostgreSQL (127.0.0.1:5432) and the emulators.
Lost = parked runs not completed within the deadline; duplicated = parked runs that produced more
than one flow run or more than one completed state record.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aios.config.bootstrap import prepare_environment  # noqa: E402
from bench.api_requests import ApiRequests  # noqa: E402
from bench.cpu import cpu_seconds  # noqa: E402

prepare_environment()


async def park(skill, count: int) -> list[str]:
    from aios.outage import deferral

    class Ctx:  # each parked run stands for its own scheduled occurrence
        def __init__(self) -> None:
            self.flow_run = type("FR", (), {"id": uuid4(), "deployment_id": None, "expected_start_time": None, "auto_scheduled": False, "tags": [], "idempotency_key": None})

    await deferral.set_paused(True)
    ids = await asyncio.gather(*(deferral.park_run(skill, {"week": f"bench-{i}"}, Ctx()) for i in range(count)))
    return list(ids)


async def wait_drained(ids: list[str], deadline: float) -> float:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    started = time.perf_counter()
    pending = set(ids)
    async with get_client() as client:
        while pending and time.perf_counter() - started < deadline:
            chunk = list(pending)[:200]
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=200)
            pending -= {str(r.id) for r in runs if r.state and r.state.is_final()}
            if pending:
                await asyncio.sleep(0.25)
    return time.perf_counter() - started


async def count_outcomes(ids: list[str]) -> tuple[int, int]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from aios.state import open_store

    # Per parked input, not per parked run: a drained run whose Claude call failed is parked again (a defer
    # skill runs on Claude only) and completes as a new run of the same input.
    completed = {(r.data.get("inputs") or {}).get("week") for r in open_store().list("runs") if r.data.get("status") == "completed"}
    lost = sum(1 for i in range(len(ids)) if f"bench-{i}" not in completed)
    async with get_client() as client:
        offset, runs = 0, []
        while True:
            page = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["weekly-report"])), limit=200, offset=offset
            )
            runs += page
            offset += len(page)
            if len(page) < 200:
                break
    per_input: dict[str, int] = {}
    for r in runs:
        if str(r.id) in ids or r.parameters.get("inputs", {}).get("week", "").startswith("bench-"):
            key = json.dumps(r.parameters, sort_keys=True)
            per_input[key] = per_input.get(key, 0) + 1
    duplicated = sum(n - 1 for n in per_input.values() if n > 1)
    return lost, duplicated


async def delete_runs(ids: list[str]) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        for i in ids:
            await client.delete_flow_run(i)


def measure(stack, database: str, skill, mode: str, runs: int, concurrency: int, profile: str | None = None) -> dict:
    from aios.outage import deferral
    from aios.outage.drainer import drain_deferred
    from flows.skill_flow import skill_flows

    ids = asyncio.run(park(skill, runs))
    if mode.startswith("worker"):
        return measure_workers(stack, database, ids, int(mode.split("×")[1]))
    else:
        tally, cpu = ApiRequests(stack.api_url), CpuTally(stack, database)
        rows, events = asyncio.run(server_rows(database)), asyncio.run(event_names(database))
        load = os.getloadavg()[0]
        started, resumed = time.perf_counter(), datetime.now(UTC)
        asyncio.run(deferral.set_paused(False))
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        with tally, cpu:
            asyncio.run(drain_deferred(skill_flows(), concurrency=concurrency))
        elapsed = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            report_profile(profiler, profile, runs)
        returned = datetime.now(UTC)
        written = {k: v - rows.get(k, 0) for k, v in asyncio.run(server_rows(database)).items()}
        emitted = {k: v - events.get(k, 0) for k, v in asyncio.run(event_names(database)).items()}
        timeline = drain_timeline(asyncio.run(run_histories(ids)), resumed, returned, concurrency)
    lost, duplicated = asyncio.run(count_outcomes(ids))
    asyncio.run(delete_runs(ids))
    return {
        "mode": mode, "concurrency": concurrency, "runs": runs, "seconds": round(elapsed, 1), "runs_per_s": round(runs / elapsed, 2), "lost": lost,
        "duplicated": duplicated, "load_1min": round(load, 1), "load_1min_end": round(os.getloadavg()[0], 1),
        "api_requests_per_run": tally.per_run(runs), "cpu_ms_per_run": cpu.per_run(runs),
        "rows_per_run": {k: round(v / runs, 1) for k, v in written.items()},
        "events_per_run": {k: round(v / runs, 2) for k, v in sorted(emitted.items(), key=lambda kv: -kv[1]) if v},
        "timeline": timeline,
    }


def drain_timeline(histories: dict[str, list], resumed: datetime, returned: datetime, concurrency: int) -> dict:
    """Where the drain's wall time goes, from the runs' own states (server timestamps): the wait before the
    first claim, how long a run takes once claimed (latency: queueing on the API server and the drainer's loop),
    the rate between the ramp-up and the tail, and the tail (the last runs finishing with slots left empty).

    By Little's law, runs/s = runs in flight / seconds per run: if the mean in flight is below the concurrency,
    claiming is what waits; if it is at the concurrency, each run's latency is what bounds the figure.
    """
    import statistics

    claims, ends, spans = [], [], []
    for states in histories.values():
        kinds = [s.type.value for s in states]
        if "PENDING" not in kinds or not states[-1].is_final():
            continue
        claim = max(s.timestamp for s in states if s.type.value == "PENDING")
        claims.append(claim)
        ends.append(states[-1].timestamp)
        spans.append((states[-1].timestamp - claim).total_seconds())
    if len(ends) < 2:
        return {}
    claims.sort()
    ends.sort()
    elapsed = (returned - resumed).total_seconds()
    edge = min(concurrency, len(ends) // 4)  # ramp-up and tail: the first and last `edge` completions left out
    steady = ends[edge : len(ends) - edge]
    rate = (len(steady) - 1) / max((steady[-1] - steady[0]).total_seconds(), 1e-6) if len(steady) > 1 else None
    return {
        "resume_to_first_claim_s": round((claims[0] - resumed).total_seconds(), 2),
        "resume_to_full_s": round((claims[min(concurrency, len(claims)) - 1] - resumed).total_seconds(), 2),
        "run_median_s": round(statistics.median(spans), 2),  # claim to final state
        "claim_to_running_median_s": median_seconds(histories, "PENDING", "RUNNING"),
        "running_to_end_median_s": median_seconds(histories, "RUNNING", "COMPLETED"),
        "mean_in_flight": round(sum(spans) / elapsed, 1),
        "steady_runs_per_s": round(rate, 2) if rate else None,
        "tail_s": round((ends[-1] - claims[-1]).total_seconds(), 2),  # last claim to last end
        "last_end_to_return_s": round((returned - ends[-1]).total_seconds(), 2),
    }


# --------------------------------------------------------------------------- load-independent evidence


class CpuTally:
    """CPU seconds each part of the stack spends while draining: this process (the drainer), the Prefect
    API server (with its worker processes), the PostgreSQL backends serving its database, the emulators.

    Counted per process id, so processes that start mid-drain count in full. PostgreSQL backends that
    exit mid-drain (connections the server's pool closes) are counted from the postmaster's total of
    exited children, which includes other databases' backends: on a busy machine that line is high.
    Less load-dependent than wall time: the sum per run bounds runs/s on this machine's cores.
    """

    def __init__(self, stack, database: str) -> None:
        self.stack, self.database = stack, database

    def sample(self) -> dict[str, dict[int, float]]:
        from aios.drill.stack import descendants

        parts: dict[str, dict[int, float]] = {"drainer": {os.getpid(): time.process_time()}}
        for p in self.stack.processes:
            key = "api server" if p.name == "prefect-server" else "workers" if p.name.startswith("worker") else p.name
            parts.setdefault(key, {}).update({pid: cpu_seconds(pid) for pid in [p.proc.pid, *descendants(p.proc.pid)]})
            if key == "workers":  # each run is a process the worker waits for: its CPU lands in the worker's cutime
                parts.setdefault("worker run processes", {})[p.proc.pid] = cpu_seconds(p.proc.pid, children=True)
        backends = postgres_backends(self.database)
        parts["postgres"] = {pid: cpu_seconds(pid) for pid in backends}
        postmaster = {parent_pid(pid) for pid in backends} - {None}
        parts["postgres exited"] = {pid: cpu_seconds(pid, children=True) for pid in postmaster}
        return parts

    def __enter__(self) -> CpuTally:
        self.before = self.sample()
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = self.sample()

    def per_run(self, runs: int) -> dict[str, float]:
        spent = {
            part: sum(cpu - self.before.get(part, {}).get(pid, 0.0) for pid, cpu in pids.items()) * 1000 / runs
            for part, pids in self.after.items()
        }
        return {"total": round(sum(spent.values())), **{k: round(v) for k, v in spent.items()}}


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def postgres_backends(database: str) -> list[int]:
    """PostgreSQL backends connected to `database` (their process title names it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                title = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres: ") and f" {database} " in title:
                pids.append(int(entry))
    return pids


ROW_TABLES = ("events", "event_resources", "log", "flow_run_state", "task_run", "task_run_state", "artifact")


async def event_names(database: str) -> dict[str, int]:
    """Events the server stored, by name: which ones a run costs (each also writes its related resources)."""
    import asyncpg

    from aios.drill.stack import POSTGRES_ADMIN_DSN

    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/" + database)
    try:
        return {r["event"]: r["n"] for r in await conn.fetch("SELECT event, count(*) AS n FROM events GROUP BY event")}
    finally:
        await conn.close()


async def server_rows(database: str) -> dict[str, int]:
    """Rows in the server's tables that grow per run (events, logs, states, task runs, artifacts)."""
    import asyncpg

    from aios.drill.stack import POSTGRES_ADMIN_DSN

    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/" + database)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ROW_TABLES}
    finally:
        await conn.close()


# --------------------------------------------------------------------------- Prefect process workers

WORKER_LIMIT = 4  # runs at once per worker (`prefect worker start --limit`); each run is its own Python process
QUERY_SECONDS = 1.0  # PREFECT_WORKER_QUERY_SECONDS for the workers (Prefect's default is 10 s)


def worker_settings() -> str:
    """What the worker figures depend on, printed above them."""
    from prefect.settings import PREFECT_WORKER_HEARTBEAT_SECONDS, PREFECT_WORKER_PREFETCH_SECONDS

    load = os.getloadavg()[0]
    return (
        f"process workers: --limit {WORKER_LIMIT} each, PREFECT_WORKER_QUERY_SECONDS={QUERY_SECONDS:g} (default 10), "
        f"prefetch {PREFECT_WORKER_PREFETCH_SECONDS.value():g} s, heartbeat {PREFECT_WORKER_HEARTBEAT_SECONDS.value():g} s; "
        f"{os.cpu_count()} CPU(s), load {load:.1f} at start. Runs parked first; workers started and polling the "
        "paused queue; timed from resume to the last run's end (server timestamps)"
    )


async def wait_workers_polling(count: int, since, timeout: float = 300) -> None:
    """Return once `count` workers started after `since` have synced with the pool and one has polled it since.

    A worker polls only after its first sync (heartbeat), so a run resumed after this is not slowed by
    worker start-up: what is timed is polling, claiming and the per-run process.
    """
    from prefect.client.orchestration import get_client

    from aios.config.settings import get_settings

    settings = get_settings()
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            beats = [w.last_heartbeat_time for w in await client.read_workers_for_work_pool(settings.work_pool)]
            beats = sorted(b for b in beats if b and b > since)
            if len(beats) >= count:
                queue = await client.read_work_queue_by_name(settings.default_queue, work_pool_name=settings.work_pool)
                if queue.last_polled and queue.last_polled > beats[count - 1]:
                    return
            await asyncio.sleep(0.5)
    raise SystemExit(f"{count} worker(s) did not start polling within {timeout:.0f} s (see the worker logs in the stack's folder)")


async def read_runs(ids: list[str]) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = []
    async with get_client() as client:
        for at in range(0, len(ids), 200):
            chunk = ids[at : at + 200]
            runs += await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=200)
    return runs


async def run_histories(ids: list[str]) -> dict[str, list]:
    """Each run's states, oldest first."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {i: sorted(await client.read_flow_run_states(i), key=lambda s: s.timestamp) for i in ids}


def median_seconds(histories: dict[str, list], since: str, until: str) -> float | None:
    """The median time from a run's last `since` state to its next `until` state (e.g. PENDING to RUNNING)."""
    import statistics

    spans = []
    for states in histories.values():
        kinds = [s.type.value for s in states]
        if since in kinds and until in kinds[kinds.index(since) :]:
            start = max(i for i, k in enumerate(kinds) if k == since and until in kinds[i:])
            end = kinds.index(until, start)
            spans.append((states[end].timestamp - states[start].timestamp).total_seconds())
    return round(statistics.median(spans), 2) if spans else None


def measure_workers(stack, database: str, ids: list[str], workers: int) -> dict:
    """Start `workers` process workers on the paused queue holding the parked runs `ids`, resume, time the drain."""
    from aios.outage import deferral

    runs = len(ids)
    stack.worker_query_seconds = QUERY_SECONDS
    since = datetime.now(UTC)
    stack.start_workers(workers, limit=WORKER_LIMIT)
    cpu = CpuTally(stack, database)
    try:
        asyncio.run(wait_workers_polling(workers, since))
        resumed = datetime.now(UTC)
        with cpu:  # from the resume to the last run's end, the workers' own start-up left out
            asyncio.run(deferral.set_paused(False))
            asyncio.run(wait_drained(ids, deadline=1800))
        flow_runs = asyncio.run(read_runs(ids))
    finally:
        stack.stop_workers()
    ended = [r.end_time for r in flow_runs if r.end_time and r.state and r.state.is_final()]
    elapsed = ((max(ended) if ended else datetime.now(UTC)) - resumed).total_seconds()
    first = min((r.start_time for r in flow_runs if r.start_time), default=None)
    per_worker: dict[str, int] = {}
    for r in flow_runs:
        name = (r.labels or {}).get("prefect.worker.name", "?")
        per_worker[name] = per_worker.get(name, 0) + 1
    histories = asyncio.run(run_histories(ids))
    twice = sum(sum(s.type.value == "COMPLETED" for s in states) > 1 for states in histories.values())
    lost, duplicated = asyncio.run(count_outcomes(ids))
    asyncio.run(delete_runs(ids))
    return {
        "mode": f"worker×{workers}", "runs": runs, "seconds": round(elapsed, 1), "runs_per_s": round(runs / elapsed, 2),
        "lost": lost, "duplicated": duplicated + twice,
        "first_start_s": round((first - resumed).total_seconds(), 1) if first else None,
        "per_worker": sorted(per_worker.values(), reverse=True),
        "claim_to_running_s": median_seconds(histories, "PENDING", "RUNNING"),  # the run's process start-up
        "running_to_end_s": median_seconds(histories, "RUNNING", "COMPLETED"),  # the run itself
        "cpu_ms_per_run": cpu.per_run(runs),
    }


def fleet_lines(r: dict) -> str:
    """What the CPU per run says about more hosts: every worker here shares these cores, so runs/s cannot grow
    with workers on this machine; on a fleet each worker host brings its own cores and the server's share bounds
    the whole. A projection from measured CPU per run, not a measurement of a fleet."""
    cpu = r["cpu_ms_per_run"]
    host = cpu.get("workers", 0) + cpu.get("worker run processes", 0)
    server = cpu.get("api server", 0) + cpu.get("postgres", 0)
    cores = os.cpu_count() or 1
    per_host = cores * 1000 / max(host, 1)
    ceiling = cores * 1000 / max(server, 1)
    return (
        f"   CPU per run: workers and their run processes {host} ms, API server + PostgreSQL {server} ms (total {cpu['total']} ms); "
        f"so one {cores}-core worker host drains ≈ {per_host:.2f} runs/s, N such hosts ≈ N × that, until a {cores}-core "
        f"server's ≈ {ceiling:.1f} runs/s (a projection from CPU per run, not a fleet measurement)"
    )

def report_profile(profiler: cProfile.Profile, path: str, runs: int) -> None:
    """Dump the drainer's profile to `path` and print where its event loop spent each run's time.

    cProfile sees this thread only: the drainer's event loop. Time in `select.epoll.poll` is the loop
    idle, waiting on the API server, PostgreSQL and the emulators (other processes); everything else
    is this process's CPU or a blocking call on the loop, which caps the runs per second of one drainer.
    """
    import pstats

    profiler.dump_stats(path)
    stats = pstats.Stats(profiler, stream=sys.stderr)
    total = stats.total_tt
    idle = sum(v[2] for k, v in stats.stats.items() if k[2] == "<method 'poll' of 'select.epoll' objects>")
    print(f"profile of the drainer's thread ({path}): {total:.1f} s, of which loop idle {idle:.1f} s; "
          f"busy {(total - idle) / runs * 1000:.0f} ms per run", file=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


def evidence_lines(r: dict) -> str:
    """The drain's per-run figures that hold at any load: API requests, CPU per process, server rows written."""
    requests = r["api_requests_per_run"]
    cpu = r["cpu_ms_per_run"]
    return "\n".join([
        f"   concurrency {r['concurrency']}; load (1 min) {r['load_1min']} at start, "
        f"{r['load_1min_end']} at end; {os.cpu_count()} CPU(s)",
        f"   API requests per run from the drainer: {requests['total']} ("
        + ", ".join(f"{k} {v:g}" for k, v in requests.items() if k != "total") + ")",
        f"   CPU per run: {cpu['total']} ms (" + ", ".join(f"{k} {v}" for k, v in cpu.items() if k != "total")
        + f"): {os.cpu_count()} cores bound the drain at ≈ {os.cpu_count() * 1000 / max(cpu['total'], 1):.1f} runs/s",
        "   server rows written per run: " + ", ".join(f"{k} {v:g}" for k, v in r["rows_per_run"].items()),
        "   events per run: " + ", ".join(f"{k} {v:g}" for k, v in r["events_per_run"].items()),
        "   timeline: " + ", ".join(f"{k} {v}" for k, v in r["timeline"].items()),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--modes", default="drainer,worker×1,worker×2")
    parser.add_argument("--workers", help="sweep process workers instead of --modes, e.g. 1,2,4 (as on a fleet of hosts)")
    parser.add_argument("--server-workers", type=int, default=1, help="Prefect API worker processes")
    parser.add_argument("--concurrency", type=int, default=16, help="drainer: runs at once")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="drainer mode: cProfile the drain, dump it to FILE, print the top entries")
    args = parser.parse_args()
    # SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C: the stack's processes stop, its database is dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import logging

    from aios.drill.stack import LocalStack, session_database

    logging.getLogger("prefect").setLevel(logging.WARNING)
    with session_database("aios_bench_drain_") as db:
        stack = LocalStack(project=ROOT, database_url=db, scheduler=False, server_workers=args.server_workers)
        try:
            with stack:
                results = drain_all(stack, db.rsplit("/", 1)[1], args)
        finally:
            stack.cleanup()  # the stack's temporary folder (logs, state), once its processes stopped
    if args.json:
        print(json.dumps(results))
    else:
        best = max(results, key=lambda r: r["runs_per_s"])
        ok = best["runs_per_s"] >= 5 and all(r["lost"] == 0 and r["duplicated"] == 0 for r in results)
        print(f"target ≥ 5 runs/s with 0 lost and 0 duplicated: {'PASS' if ok else 'MISS'} (best: {best['mode']} {best['runs_per_s']} runs/s)")


def drain_all(stack, database: str, args: argparse.Namespace) -> list[dict]:
    """Deploy into the running stack and measure each way of draining in turn, printing as it goes."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from aios.config.runtime import reset_runtime
    from aios.config.settings import reload_settings
    from aios.skills.loader import find_skill

    stack.run("deploy", timeout=300)
    os.environ.update(stack.env)
    os.environ["AIOS_MEMORY_EXTRACTION"] = "false"
    reload_settings()
    reset_runtime()
    skill = find_skill(ROOT / "skills", "weekly-report")
    results = []
    with temporary_settings(updates={PREFECT_API_URL: stack.api_url}):
        modes = [f"worker×{n.strip()}" for n in args.workers.split(",")] if args.workers else args.modes.split(",")
        if any(m.startswith("worker") for m in modes) and not args.json:
            print(worker_settings(), flush=True)
        for mode in modes:
            results.append(measure(stack, database, skill, mode.replace("x", "×"), args.runs, args.concurrency, args.profile))
            if not args.json:
                r = results[-1]
                spread = (
                    f"   runs per worker {r['per_worker']}; first start {r['first_start_s']} s after resume, median claimed→running "
                    f"{r['claim_to_running_s']} s (process start-up), running→completed {r['running_to_end_s']} s"
                ) if "per_worker" in r else ""
                print(f"{r['mode']:<10} {r['runs']} runs in {r['seconds']:>6.1f} s = {r['runs_per_s']:>5.2f} runs/s   lost {r['lost']}  duplicated {r['duplicated']}{spread}", flush=True)
                if "per_worker" in r:
                    print(fleet_lines(r), flush=True)
                elif "cpu_ms_per_run" in r:
                    print(evidence_lines(r), flush=True)
    return results


if __name__ == "__main__":
    main()
