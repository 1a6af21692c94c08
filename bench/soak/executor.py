"""A soak drainer process: runs the skill runs submitted to the pool's `default` queue in-process, and
the deferred queue's whenever it is resumed, both with aios's own drainer loop (`drain_deferred`).

    python -m bench.soak.executor --concurrency 8

Claims a run the way a Prefect worker does (proposing PENDING, which the server grants to one
claimant only), so it races fairly with process workers and the other drainers. It is SIGKILLed and
restarted by the soak driver; it keeps no state of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

# Each poll is a work-pool read that also updates the queue's and pool's status on the server: on 2 cores the
# polls of every claimant add up (by their intervals, ~10 a second in a soak that polled every 0.5 s). The loop
# polls while a slot is free (at most every POLL_SECONDS when there is nothing to take) and refills a slot from
# the runs its last poll listed as soon as it frees; the driver keeps the backlog deeper than the drainers' slots.
POLL_SECONDS = 1.0
# Parked runs wait for Claude anyway (the queue is paused while it is down): a few seconds more cost nothing.
DEFERRED_POLL_SECONDS = 5.0


async def serve(concurrency: int, queue: str) -> None:
    from prefect.context import AsyncClientContext, SyncClientContext

    from aios.outage.drainer import drain_deferred
    from flows.skill_flow import skill_flows

    flows = skill_flows()
    # One Prefect client of each kind for both loops and every run in this process (each loop would open its own).
    with SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create():
            await asyncio.gather(  # aios's own drainer loop, serving each queue for ever
                drain_deferred(flows, concurrency, idle_polls=None, poll_seconds=POLL_SECONDS, queue=queue),
                drain_deferred(flows, max(2, concurrency // 2), idle_polls=None, poll_seconds=DEFERRED_POLL_SECONDS),
            )


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
