"""What `aios validate` will run, resolved before anything is paid for: each skill with its policy
restricted to the targets under test, and its compare rule. Any mistake is one ConfigError line."""

from __future__ import annotations

from dataclasses import dataclass

from aios.config.runtime import get_runtime
from aios.config.settings import Settings
from aios.core.policy import FallbackPolicy
from aios.errors import ConfigError
from aios.skills.loader import Skill, find_skill, load_skills
from aios.validation.compare import CompareRule
from aios.validation.matrix import parse_targets


@dataclass(frozen=True)
class SkillPlan:
    """One skill to validate: its policy restricted to the targets under test, and its compare rule."""

    skill: Skill
    policy: FallbackPolicy
    rule: CompareRule


def plan_validation(
    skills: list[str] | None = None, targets: list[str] | str | None = None, settings: Settings | None = None
) -> list[SkillPlan]:
    """Resolve names and target specs up front; any problem is one ConfigError line."""
    settings = settings or get_runtime().settings
    chosen = [find_skill(settings.skills_dir, name) for name in dict.fromkeys(skills)] if skills else load_skills(
        settings.skills_dir
    )
    if not chosen:
        raise ConfigError(settings.skills_dir, "no skills to validate")
    specs = parse_targets(targets)
    override = settings.policy(specs).targets if specs else None
    plans = []
    for skill in chosen:
        policy = settings.policy(skill.metadata.models)
        if override is not None:
            policy = policy.with_targets(override)
        rule = CompareRule.parse(skill.metadata.compare, where=f"{skill.path}: metadata.compare")
        plans.append(SkillPlan(skill=skill, policy=policy, rule=rule))
    return plans
