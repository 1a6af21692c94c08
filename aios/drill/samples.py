"""The skills' sample records (`records.sample.json` beside SKILL.md), seeded so the records skills
have something to work on in the drill and after the README's first command.

Data, not a flow: it only writes keys nobody has written, so a user's own rows stay as they are.
"""

from __future__ import annotations

import json
from pathlib import Path

from aios.config.settings import get_settings
from aios.skills.loader import load_skills
from aios.state import JsonStore, Store, VersionConflict, load_state_settings, open_store

SAMPLE_RECORDS = "records.sample.json"  # beside SKILL.md: {"table": ..., "records": {key: fields}}


def seed_sample_records(skills_dir: Path, store: Store | None = None) -> dict[str, int]:
    """Create each skill's sample records that do not exist yet; (table -> records created).

    `expected_version=0`: only a key nobody has written is created, so a user's own rows stay as they are.
    """
    created: dict[str, int] = {}
    for skill in load_skills(skills_dir):
        path = skill.folder / SAMPLE_RECORDS
        if skill.metadata.source is None or not path.exists():
            continue
        sample = json.loads(path.read_text(encoding="utf-8"))
        target = store or open_store(skill=skill.name)
        table = sample["table"]
        for key, fields in sample["records"].items():
            try:
                target.upsert(table, key, fields, expected_version=0)
                created[table] = created.get(table, 0) + 1
            except VersionConflict:
                continue
    return created


def seed_project_samples() -> dict[str, int]:
    """The samples in the project's embedded JSON store (`aios drill` runs it before its isolated stack starts).

    Only the embedded JSON store: a user's sheet or base is never seeded.
    """
    return seed_sample_records(get_settings().skills_dir, JsonStore(load_state_settings().json_path()))
