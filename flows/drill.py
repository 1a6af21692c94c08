"""Fire-drill flows: `fire-drill` runs the drill against the stack this process points at;
`scheduled-fire-drill` (the weekly deployment, off by default) runs `aios drill` in an isolated
stack and publishes its verdict on the server that scheduled it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact

from aios.drill.inbox import AlertInbox
from aios.drill.report import DrillReport
from aios.drill.runner import Drill
from aios.drill.scenarios import SCENARIOS, run_drill
from aios.config.runtime import get_runtime
from aios.skills.loader import load_skills
from flows.records import build_records_flow
from flows.skill_flow import build_skill_flow
from flows.status_check import status_check


@flow(name="fire-drill", persist_result=False)
async def fire_drill(
    scenarios: list[str] | None = None, live: bool = False, control_url: str | None = None, progress: Callable | None = None
) -> dict:
    """Simulate a Claude outage per scenario and check every skill against its triage class."""
    from aios.emulators.control import EmulatorControl

    inbox = AlertInbox()
    saved_urls = os.environ.get("AIOS_ALERT_URLS")
    os.environ["AIOS_ALERT_URLS"] = inbox.url  # the drill counts alerts itself, it never pages anyone
    try:
        drill = Drill(
            control=EmulatorControl(control_url or os.environ["AIOS_EMULATOR_URL"]),
            skills=load_skills(get_runtime().settings.skills_dir),
            inbox=inbox,
            status_check=status_check,
            skill_flow=build_skill_flow,
            records_flow=build_records_flow,
            live=live,
            progress=progress or (lambda name: None),
        )
        report = await run_drill(drill, scenarios or list(SCENARIOS))
    finally:
        inbox.close()
        if saved_urls is None:
            os.environ.pop("AIOS_ALERT_URLS", None)
        else:
            os.environ["AIOS_ALERT_URLS"] = saved_urls
    await acreate_markdown_artifact(key="fire-drill", markdown=report.markdown(), description="Fire drill verdict")
    return report.to_json()


@flow(name="scheduled-fire-drill", persist_result=False)
async def scheduled_fire_drill(scenarios: list[str] | None = None) -> dict:
    """Run `aios drill` in an isolated stack and publish its verdict here."""
    args = [sys.executable, "-m", "aios.cli", "drill", "--json"]
    for name in scenarios or []:
        args += ["--scenario", name]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=1800)
    data = json.loads(proc.stdout or "{}")
    report = DrillReport.model_validate({**data, "scenarios": data.get("scenarios", [])}) if data else DrillReport(live=False)
    await acreate_markdown_artifact(key="fire-drill", markdown=report.markdown(), description="Weekly fire drill")
    if proc.returncode != 0:
        raise RuntimeError(f"fire drill failed (exit {proc.returncode}); see the fire-drill artifact")
    return data
