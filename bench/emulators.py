"""How long the emulators' slow faults take to show, through the real SDKs.

Run:  python bench/emulators.py [--samples 10] [--json]

Starts one emulator subprocess and times, as median and max over `--samples` calls:
  hang        - the `hang` fault against the Anthropic SDK with a 0.4 s read timeout: time to
                APITimeoutError (target: the timeout plus a few ms, well under 3 s);
  black hole  - a plain httpx GET and an Anthropic SDK call against a `BlackHole` with a 0.3 s
                connect timeout: time to ConnectTimeout / APITimeoutError (target: under 1.5 s);
  slow        - the `slow` fault with a 0.3 s delay: time to the answer (at least the delay).
These were wall-clock assertions in tests/emulators; a test asserts behaviour, this prints figures.
The exit status is 0 whatever the figures (a report, not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import anthropic
import httpx
import httpx2

from aios.emulators.blackhole import BlackHole
from aios.emulators.server import running_emulator

READ_TIMEOUT, CONNECT_TIMEOUT, SLOW_DELAY = 0.4, 0.3, 0.3
TARGETS_S = {"hang": 3.0, "black hole (httpx)": 1.5, "black hole (anthropic SDK)": 1.5}
USER = [{"role": "user", "content": "Summarise the quarterly revenue report for Acme"}]


async def seconds(fn: Callable[[], Awaitable[object]], expected: type[BaseException] | None = None) -> float:
    started = time.perf_counter()
    try:
        await fn()
    except Exception as exc:
        if expected is None or not isinstance(exc, expected):
            raise
    else:
        if expected is not None:
            raise AssertionError(f"expected {expected.__name__}")
    return time.perf_counter() - started


async def measure(samples: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {name: [] for name in ("hang", "black hole (httpx)", "black hole (anthropic SDK)", "slow")}
    with running_emulator() as emulator:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=emulator.anthropic_base_url, max_retries=0)

        def call(c: anthropic.AsyncAnthropic) -> Awaitable[object]:
            return c.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=USER)  # type: ignore[arg-type]

        short = client.with_options(timeout=httpx2.Timeout(5.0, connect=1.0, read=READ_TIMEOUT))
        await call(client)  # warm-up: connection pool and imports
        emulator.control.set_fault("anthropic", "hang")
        for _ in range(samples):
            figures["hang"].append(await seconds(lambda: call(short), anthropic.APITimeoutError))
        emulator.control.set_fault("anthropic", "slow", delay=SLOW_DELAY)
        for _ in range(samples):
            figures["slow"].append(await seconds(lambda: call(client)))
        emulator.control.clear_faults()
        await client.close()

        with BlackHole() as hole:
            holed = anthropic.AsyncAnthropic(api_key="k", base_url=hole.url, max_retries=0,
                                             timeout=httpx2.Timeout(5.0, connect=CONNECT_TIMEOUT))
            for _ in range(samples):
                async def plain() -> None:
                    httpx.get(hole.url, timeout=httpx.Timeout(5.0, connect=CONNECT_TIMEOUT))
                figures["black hole (httpx)"].append(await seconds(plain, httpx.ConnectTimeout))
                figures["black hole (anthropic SDK)"].append(await seconds(lambda: call(holed), anthropic.APITimeoutError))
            await holed.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print only one JSON line")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.samples))
    summary = {
        name: {"median_s": round(statistics.median(values), 3), "max_s": round(max(values), 3)}
        for name, values in figures.items()
    }
    if not args.json:
        print(f"{'figure':30} {'median':>8} {'max':>8}  target")
        for name, row in summary.items():
            target = TARGETS_S.get(name)
            verdict = "" if target is None else f"< {target} s {'PASS' if row['max_s'] < target else 'MISS'}"
            if name == "slow":
                verdict = f">= {SLOW_DELAY} s {'PASS' if min(figures[name]) >= SLOW_DELAY else 'MISS'}"
            print(f"{name:30} {row['median_s']:>7.3f}s {row['max_s']:>7.3f}s  {verdict}")
    print(json.dumps({"samples": args.samples, **summary}))


if __name__ == "__main__":
    main()
