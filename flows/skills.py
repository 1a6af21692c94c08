"""Module-level flow objects, one per skill, for deployment entrypoints (`flows/skills.py:research_lead`).

Built from the `skills/` folder at import, so adding a skill folder adds a flow; the flow's name is
the skill's name, so the Prefect UI groups runs by skill.
"""

from aios.config.entrypoints import attribute_name
from flows.skill_flow import skill_flows

globals().update({attribute_name(name): f for name, f in skill_flows().items()})
