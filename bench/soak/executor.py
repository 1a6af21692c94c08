"""A soak drainer process: runs the skill runs submitted to the pool's `default` queue in-process, and
drains the deferred queue with aios's own `drain_deferred` whenever it is resumed.

    python -m bench.soak.executor --concurrency 8

Claims a run the way a Prefect worker does (proposing PENDING, which the server grants to one
claimant only), so it races fairly with process workers and the other drainers. It is SIGKILLed and
restarted by the soak driver; it keeps no state of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import UTC, datetime, timedelta

log = logging.getLogger("aios.soak.executor")
# Each poll is a work-pool read that also updates the queue's and pool's status on the server: on 2 cores the
# polls of every claimant add up (by their intervals, ~10 a second in a soak that polled every 0.5 s). The driver keeps the backlog
# deeper than the drainers' free slots, so a slot that frees up waits at most a poll for its next run.
POLL_SECONDS = 1.0
# Parked runs wait for Claude anyway (the queue is paused while it is down): a few seconds more cost nothing.
DEFERRED_POLL_SECONDS = 5.0


async def serve_default_queue(flows, concurrency: int, queue: str) -> None:
    from prefect.client.orchestration import get_client

    from aios.outage.drainer import claim_run, run_claimed
    from aios.config.runtime import get_runtime

    pool = get_runtime().settings.work_pool
    gate = asyncio.Semaphore(concurrency)
    active: set = set()
    names: dict = {}

    async def execute(client, flow_run) -> None:
        try:
            async with gate:
                if flow_run.flow_id not in names:
                    names[flow_run.flow_id] = (await client.read_flow(flow_run.flow_id)).name
                flow = flows.get(names[flow_run.flow_id])
                if flow is None:
                    return
                claimed = await claim_run(client, flow_run.id)  # the list read above may be stale by now
                if claimed is None:
                    return
                await run_claimed(flow, claimed)  # as aios's drainer runs one
        except Exception as exc:  # noqa: BLE001 - one run's trouble (e.g. the API restarting) must not stop the loop
            log.warning("run %s: %s: %s", flow_run.id, type(exc).__name__, exc)
        finally:
            active.discard(flow_run.id)

    async with get_client() as client:  # inside serve()'s shared client context: the one client of this process
        while True:
            free = concurrency - len(active)
            if free > 0:
                try:
                    responses = await client.get_scheduled_flow_runs_for_work_pool(
                        pool, work_queue_names=[queue], scheduled_before=datetime.now(UTC) + timedelta(seconds=1)
                    )
                except Exception as exc:  # noqa: BLE001 - the server is restarting: poll again
                    log.warning("poll failed: %s", type(exc).__name__)
                    responses = []
                for r in [r for r in responses if r.flow_run.id not in active][:free]:
                    active.add(r.flow_run.id)
                    asyncio.create_task(execute(client, r.flow_run))
            await asyncio.sleep(POLL_SECONDS)


async def serve_deferred_queue(flows, concurrency: int) -> None:
    from aios.outage.drainer import drain_deferred

    while True:
        try:
            await drain_deferred(flows, concurrency=concurrency, idle_polls=1, poll_seconds=POLL_SECONDS)
        except Exception as exc:  # noqa: BLE001
            log.warning("drain failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(DEFERRED_POLL_SECONDS)


async def serve(concurrency: int, queue: str) -> None:
    from prefect.context import AsyncClientContext, SyncClientContext

    from flows.skill_flow import skill_flows

    flows = skill_flows()
    # One Prefect client of each kind for every run in this process, as aios's drainer keeps: the engine
    # otherwise builds an async client per run and a sync one per result lookup (each loads the CA bundle).
    with SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create():
            await asyncio.gather(serve_default_queue(flows, concurrency, queue), serve_deferred_queue(flows, max(2, concurrency // 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--queue", default="default")
    args = parser.parse_args()
    from aios.config.bootstrap import prepare_environment

    prepare_environment()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.concurrency, args.queue))


if __name__ == "__main__":
    main()
