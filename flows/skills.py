"""Module-level flow objects, one per skill, for deployment entrypoints (`flows/skills.py:research_lead`).

Built from the `skills/` folder at import, so adding a skill folder adds a flow; the flow's name is
the skill's name, so the Prefect UI groups runs by skill.
"""

from flows.skill_flow import skill_flows


def attribute_name(skill: str) -> str:
    return skill.replace("-", "_")


globals().update({attribute_name(name): f for name, f in skill_flows().items()})
