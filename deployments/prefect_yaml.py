"""Keep `prefect.yaml` in step with the skills: one deployment per skill with its cron schedule,
plus the status-check and the (inactive) weekly fire-drill deployments.

    python -m deployments.prefect_yaml           # rewrite prefect.yaml
    python -m deployments.prefect_yaml --check   # exit 1 when prefect.yaml has drifted
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings, SettingsConfigDict

from aios.config.entrypoints import SCHEDULED_FIRE_DRILL, STATUS_CHECK, VALIDATE_SKILLS, skill_entrypoint
from aios.errors import ConfigError
from aios.skills.loader import Skill, load_skills

HEADER = """\
# Generated from skills/*/SKILL.md by `aios deploy --write` (deployments/prefect_yaml.py).
# Edit the skills, not this file: `aios deploy --check` fails when the two drift apart.
"""
POOL = "aios"
EXTRA_DEPLOYMENTS: list[dict[str, Any]] = [
    {
        "name": "fire-drill",
        "description": "Weekly fire drill in an isolated stack: simulate a Claude outage, check every skill (off by default).",
        "entrypoint": SCHEDULED_FIRE_DRILL.path,
        "tags": ["aios", "drill"],
        "parameters": {},
        "schedules": [{"cron": "0 6 * * 1", "timezone": "UTC", "active": False}],
        "work_pool": {"name": POOL, "work_queue_name": "health", "job_variables": {}},
    },
    {
        "name": "validate-skills",
        "description": "Cross-model validation of every skill on every target (off by default).",
        "entrypoint": VALIDATE_SKILLS.path,
        "tags": ["aios", "validation"],
        "parameters": {},
        "schedules": [{"cron": "0 5 * * 1", "timezone": "UTC", "active": False}],
        "work_pool": {"name": POOL, "work_queue_name": "health", "job_variables": {}},
    },
]


class PullSettings(BaseSettings):
    """How a worker on any host gets the project (`AIOS_DEPLOY_*`, read when prefect.yaml is written).

    Without these, prefect.yaml has no `pull` section and `prefect deploy` records the deploying
    machine's directory: right for one machine, wrong for a fleet.
    """

    model_config = SettingsConfigDict(env_prefix="AIOS_DEPLOY_", extra="ignore")

    #: git URL the workers clone (and pull again before every run)
    repository: str | None = None
    branch: str | None = None
    #: where a worker works: with a repository, it clones into <directory>/aios; without one, the project
    #: is already there. May be a placeholder the worker resolves, e.g. '{{ $AIOS_WORKER_DIR }}'.
    directory: str | None = None


CLONE_NAME = "aios"


def pull_steps(settings: PullSettings | None = None) -> list[dict[str, Any]] | None:
    """The `pull` section: Prefect's own steps, run by the worker before each flow run."""
    settings = settings or PullSettings()
    steps: list[dict[str, Any]] = []
    if settings.directory:
        steps.append({"prefect.deployments.steps.set_working_directory": {"directory": settings.directory}})
    if settings.repository:
        clone: dict[str, Any] = {"repository": settings.repository}
        if settings.branch:
            clone["branch"] = settings.branch
        if settings.directory:
            clone["clone_directory_name"] = CLONE_NAME
        steps.append({"prefect.deployments.steps.git_clone": clone})
    return steps or None


def _work_pool(queue: str = "default") -> dict[str, Any]:
    return {"name": POOL, "work_queue_name": queue, "job_variables": {}}


def skill_deployment(skill: Skill) -> dict[str, Any]:
    return {
        "name": skill.name,
        "description": skill.description,
        # a skill that works on records runs them step by step (flows/records.py); others answer once
        "entrypoint": skill_entrypoint(skill.name, records=skill.metadata.source is not None).path,
        "tags": ["aios", f"triage:{skill.triage.value}"],
        "parameters": {},
        # the flow's `inputs` parameter carries the skill's input schema: the API refuses a bad value
        "enforce_parameter_schema": True,
        "schedules": [{"cron": skill.metadata.schedule, "timezone": "UTC", "active": True}] if skill.metadata.schedule else [],
        "work_pool": _work_pool(),
    }


def render(skills: list[Skill]) -> dict[str, Any]:
    deployments = [skill_deployment(s) for s in skills]
    deployments.append(
        {
            "name": "status-check",
            "description": "Decide provider health, alert on change, pause/resume the deferred queue.",
            "entrypoint": STATUS_CHECK.path,
            "tags": ["aios", "health"],
            "parameters": {},
            "schedules": [{"cron": "* * * * *", "timezone": "UTC", "active": True}],
            "work_pool": _work_pool("health"),
        }
    )
    deployments += EXTRA_DEPLOYMENTS
    return {
        "name": "aios",
        "prefect-version": "3.8.8",
        "build": None,
        "push": None,
        "pull": pull_steps(),
        "deployments": deployments,
    }


def render_text(root: Path) -> str:
    return HEADER + yaml.safe_dump(render(load_skills(root / "skills")), sort_keys=False, width=120)


def check(root: Path) -> list[str]:
    """Human-readable differences between prefect.yaml and the skills (empty when in step)."""
    path = root / "prefect.yaml"
    if not path.exists():
        return ["prefect.yaml is missing (run `aios deploy --write`)"]
    current = read(path)
    wanted = render(load_skills(root / "skills"))
    have = {d["name"]: d for d in current.get("deployments") or []}
    want = {d["name"]: d for d in wanted["deployments"]}
    problems = []
    if current.get("pull") != wanted["pull"]:
        problems.append("prefect.yaml: the pull section differs from AIOS_DEPLOY_REPOSITORY/BRANCH/DIRECTORY")
    problems += [f"prefect.yaml: deployment '{n}' has no skill folder" for n in sorted(set(have) - set(want))]
    problems += [f"prefect.yaml: skill '{n}' has no deployment" for n in sorted(set(want) - set(have))]
    for name in sorted(set(have) & set(want)):
        for key in ("entrypoint", "schedules", "work_pool", "description", "parameters", "enforce_parameter_schema"):
            if have[name].get(key) != want[name].get(key):
                problems.append(f"prefect.yaml: deployment '{name}': {key} differs from skills/{name}/SKILL.md")
    return problems


def read(path: Path) -> dict[str, Any]:
    """prefect.yaml as a mapping whose `deployments` are named mappings; anything else is one ConfigError."""
    try:
        current = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise ConfigError(path, f"not valid YAML{where}: {problem} (fix it, or rewrite it with `aios deploy --write`)") from None
    if current is None:
        return {}
    if not isinstance(current, dict):
        raise ConfigError(path, f"expected a mapping with 'deployments', found a {type(current).__name__} (rewrite it with `aios deploy --write`)")
    deployments = current.get("deployments") or []
    if not isinstance(deployments, list) or not all(isinstance(d, dict) and isinstance(d.get("name"), str) for d in deployments):
        raise ConfigError(path, "'deployments' must be a list of mappings, each with a 'name' (rewrite it with `aios deploy --write`)", "deployments")
    return current


def write(root: Path) -> None:
    path = root / "prefect.yaml"
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(render_text(root))
    tmp.replace(path)


if __name__ == "__main__":
    root = Path.cwd()
    if "--check" in sys.argv:
        try:
            issues = check(root)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        print("\n".join(issues) or "prefect.yaml is in step with the skills")
        sys.exit(1 if issues else 0)
    write(root)
