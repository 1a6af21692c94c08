"""A skill run inside your own Prefect flow: research a lead, then route it on the answer.

    AIOS_HOME=/path/to/your/aios/project python examples/skill_in_my_flow.py "Acme Freight"

`arun_skill` runs the `research-lead` skill as a subflow of `lead_intake` (one flow-run tree in the
Prefect UI) with the same fallback policy as `aios run`: when Claude is down the answer comes from
OpenAI, and `run.provider` says so. Prints the flow's result as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys

from prefect import flow, task

from aios import arun_skill


@task
def route(fit: str, priority: str) -> str:
    """Your own step after the skill: who follows up on this lead."""
    if fit == "strong" and priority == "high":
        return "account-executive"
    return "nurture-campaign" if fit != "poor" else "no-follow-up"


@flow(name="lead-intake")
async def lead_intake(company: str) -> dict:
    run = await arun_skill("research-lead", {"company": company})
    if not run.ok:  # an outage with no fallback left, a bad answer: the record says why
        return {"company": company, "status": run.status.value, "routed_to": "a-human", "reason": run.reason}
    return {
        "company": company,
        "status": run.status.value,
        "answered_by": f"{run.provider}:{run.model}",
        "skill_run_id": run.run_id,
        "routed_to": route(run.output["fit"], run.output["priority"]),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(lead_intake(sys.argv[1] if len(sys.argv) > 1 else "Acme Freight"))))
