"""What answering a skill through Claude Code or Codex costs in latency, next to the SDK adapters.

Run:  python bench/agent_clis.py [--samples 5] [--json]

Starts the emulators only (no Prefect: the figure is the model call) and asks the `research-lead`
skill's question, with its output contract checked, through each target:

    anthropic:claude-sonnet-5-5   the Anthropic SDK adapter            (reference for claude-code)
    claude-code:sonnet            `claude -p` (Claude Code), one process per call
    openai:gpt-5.5                the OpenAI SDK adapter               (reference for codex)
    codex:gpt-5.5                 `codex exec` (Codex), one process per call

Each figure is the median of `--samples` calls after one warm-up call, samples interleaved across
targets. The emulator answers at once, so a figure is the adapter's own cost: for the CLIs, process
start-up, the CLI's request handling and reading its output. Ratios are CLI median / SDK median (large,
as the SDK call against an instant emulator takes milliseconds); "added" is CLI median - SDK median,
the latency a real call through the CLI pays on top of the model's own time.
The CLIs get scratch homes (never the user's login); Codex talks to the emulated Responses API.
The exit status is 0 whatever the figures (this is a report, not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aios.core.contract import contract_validator  # noqa: E402
from aios.core.policy import Target, Timeouts  # noqa: E402
from aios.emulators.server import running_emulator  # noqa: E402
from aios.providers import ModelRequest, Providers  # noqa: E402
from aios.config.settings import Settings  # noqa: E402
from aios.skills.loader import find_skill  # noqa: E402

PAIRS = (("anthropic:claude-sonnet-5-5", "claude-code:sonnet"), ("openai:gpt-5.5", "codex:gpt-5.5"))
KEY = "bench-key"  # the emulators accept any non-empty key


def _target(key: str) -> Target:
    provider, _, model = key.partition(":")
    return Target(provider=provider, model=model)


async def measure(samples: int) -> dict[str, list[float]]:
    skill = find_skill(ROOT / "skills", "research-lead")
    request = ModelRequest(system=skill.instructions, prompt="Research the lead: Acme Robotics, 40 staff, Berlin.",
                           schema_name="research_lead", output_schema=skill.output_schema)
    check = contract_validator(request.output_schema)
    providers = Providers(Settings())
    timeouts = Timeouts(connect=5, read=120)
    keys = [k for pair in PAIRS for k in pair]
    times: dict[str, list[float]] = {k: [] for k in keys}
    for i in range(samples + 1):  # the first round warms up (imports, connection pools, disk caches)
        for key in keys:
            started = time.perf_counter()
            reply = await providers.complete(_target(key), request, None, timeouts)
            check(reply)
            if i:
                times[key].append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args()
    subprocess.run([str(ROOT / "scripts" / "install-agent-clis")], check=True)
    with tempfile.TemporaryDirectory(prefix="aios-bench-clis-") as scratch, running_emulator() as emulator:
        for name in ("HOME", "CODEX_HOME"):
            os.makedirs(os.path.join(scratch, name))
            os.environ[name] = os.path.join(scratch, name)
        os.environ.update({
            "AIOS_HOME": str(ROOT),
            "ANTHROPIC_BASE_URL": emulator.anthropic_base_url, "ANTHROPIC_API_KEY": KEY,
            "OPENAI_BASE_URL": emulator.openai_base_url, "OPENAI_API_KEY": KEY,
            "AIOS_CODEX_BASE_URL": emulator.openai_base_url,
        })
        times = asyncio.run(measure(args.samples))
        asked = sorted({f"{r['provider']} {r['model']} {r['path']}" for r in emulator.control.requests()})
    medians = {k: statistics.median(v) for k, v in times.items()}
    figures = {
        "samples": args.samples,
        "median_ms": {k: round(v, 1) for k, v in medians.items()},
        "ratio_to_sdk": {cli: round(medians[cli] / medians[sdk], 1) for sdk, cli in PAIRS},
        "added_ms": {cli: round(medians[cli] - medians[sdk], 1) for sdk, cli in PAIRS},
        "requests_seen": asked,  # what each adapter asked the emulated APIs for (model names, paths)
        "cpus": os.cpu_count(),
    }
    if not args.json:
        table = Table(title=f"research-lead through each adapter (median of {args.samples}, emulated API)")
        for column in ("target", "median ms", "min ms", "max ms", "vs SDK", "added ms"):
            table.add_column(column)
        for sdk, cli in PAIRS:
            for key in (sdk, cli):
                ratio = f"x{figures['ratio_to_sdk'][cli]}" if key == cli else "1.0 (reference)"
                added = f"+{figures['added_ms'][cli]:.0f}" if key == cli else "-"
                table.add_row(key, f"{medians[key]:.0f}", f"{min(times[key]):.0f}", f"{max(times[key]):.0f}", ratio, added)
        Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
