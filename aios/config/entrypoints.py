"""The project's flows, named by entrypoint and loaded from the project folder when aios drives them.

`flows/` is project content, like `skills/`: aios runs its flows but never imports them by name (no
module of aios/ imports `flows`), so the dependency points one way, from the project to aios. Each
flow aios drives is named here once by its `module:attr` entrypoint and found the way a Prefect
worker finds a deployment's flow; `deployments/prefect_yaml.py` writes the same names into
prefect.yaml (`Entrypoint.path`). Only the standard library is imported here and a flow is imported
when first used, so the CLI starts fast.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entrypoint:
    """`flows.skill_flow:build_skill_flow`: a module of the project and an attribute of it."""

    module: str
    attr: str

    def __str__(self) -> str:
        return f"{self.module}:{self.attr}"

    @property
    def path(self) -> str:
        """As prefect.yaml names it: `flows/skill_flow.py:build_skill_flow`."""
        return f"{self.module.replace('.', '/')}.py:{self.attr}"

    def load(self) -> Any:
        """The object, imported from the project (`AIOS_HOME`, else the current directory).

        A project without it is one `ConfigError` line naming the project folder and the entrypoint.
        """
        from aios.config.bootstrap import project_root
        from aios.errors import ConfigError

        root = project_root()
        try:
            module = _import(self.module, str(root))
        except ModuleNotFoundError as exc:
            if not _names_part_of(exc.name, self.module):
                raise  # the flow's module exists; something it imports is missing (a broken install)
            raise ConfigError(root, f"the project has no flow {self} ({self.path.partition(':')[0]} not found)") from None
        try:
            return getattr(module, self.attr)
        except AttributeError:
            raise ConfigError(root, f"the project has no flow {self} (module {self.module} has no '{self.attr}')") from None


def _import(module: str, root: str) -> Any:
    """Import `module` as it is importable now (installed, or on the path); else from the project root."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if not _names_part_of(exc.name, module) or root in sys.path:
            raise
    sys.path.append(root)  # after everything else: the project never shadows an installed package
    importlib.invalidate_caches()
    return importlib.import_module(module)


def _names_part_of(missing: str | None, module: str) -> bool:
    """`flows` or `flows.records` missing, for `flows.records`: the project's module itself is absent."""
    return missing is not None and (module == missing or module.startswith(missing + "."))


def attribute_name(skill: str) -> str:
    """The module attribute a skill's deployed flow has (`research-lead` -> `research_lead`)."""
    return skill.replace("-", "_")


SKILLS_MODULE = "flows.skills"  # one flow per skill that answers once, for deployment entrypoints
RECORDS_MODULE = "flows.records"  # one flow per skill that works on records


def skill_entrypoint(skill: str, records: bool) -> Entrypoint:
    """The deployed flow of one skill: `flows/records.py:research_lead` or `flows/skills.py:daily_news`."""
    return Entrypoint(RECORDS_MODULE if records else SKILLS_MODULE, attribute_name(skill))


SKILL_FLOW = Entrypoint("flows.skill_flow", "build_skill_flow")  # skill name -> its flow
SKILL_FLOWS = Entrypoint("flows.skill_flow", "skill_flows")  # () -> every skill's flow, by name
RECORDS_FLOW = Entrypoint(RECORDS_MODULE, "build_records_flow")  # records skill name -> its flow
STATUS_CHECK = Entrypoint("flows.status_check", "status_check")
VALIDATE_SKILLS = Entrypoint("flows.validate", "validate_skills")
FIRE_DRILL = Entrypoint("flows.drill", "fire_drill")
SCHEDULED_FIRE_DRILL = Entrypoint("flows.drill", "scheduled_fire_drill")
