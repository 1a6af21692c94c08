"""The sample `leads` table, and `aios run SKILL --record KEY` refusing a skill without records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aios.state import JsonStore
from aios.drill.samples import seed_sample_records

ROOT = Path(__file__).resolve().parents[2]


def test_the_sample_leads_are_seeded_once_and_a_users_own_row_is_left_alone(tmp_path):
    store = JsonStore(tmp_path / "aios.json")
    mine = store.upsert("leads", "northwind-robotics", {"company": "Northwind", "status": "won", "notes": "mine"})
    assert seed_sample_records(ROOT / "skills", store) == {"leads": 4}
    assert store.get("leads", "northwind-robotics") == mine
    assert {r.key for r in store.list("leads", {"status": "new"})} == {"acme-logistics", "blue-harbor-foods", "cobalt-dental", "fjord-analytics"}
    assert seed_sample_records(ROOT / "skills", store) == {}, "a second seeding creates nothing"


def test_record_option_on_a_skill_without_records_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "aios.cli", "run", "daily-news", "--record", "x"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines == [f"error: {ROOT}/skills/daily-news/SKILL.md: metadata.source: --record needs a skill that works on records (set metadata.source)"]


def test_the_drill_seeds_the_projects_own_json_store_and_never_a_users_sheet(tmp_path, monkeypatch):
    """`aios drill` (the README's first command) seeds the embedded JSON store before its own stack starts."""
    import json
    import shutil

    from aios.drill.samples import seed_project_samples
    from aios.config.settings import reload_settings

    shutil.copytree(ROOT / "skills", tmp_path / "skills")
    mine = JsonStore(tmp_path / "state" / "aios.json").upsert("leads", "acme-logistics", {"company": "Acme", "status": "won"})
    for var in ("AIOS_STATE_PATH", "AIOS_STATE_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AIOS_HOME", str(tmp_path))
    # research-lead's records live in a sheet nobody can reach: seeding must not go there
    monkeypatch.setenv("AIOS_STATE_SKILL_BACKENDS", json.dumps({"research-lead": "sheets"}))
    monkeypatch.setenv("AIOS_STATE_SHEETS_API_URL", "http://127.0.0.1:9/sheets")
    reload_settings()
    try:
        assert seed_project_samples() == {"leads": 4}, "five samples, one key taken"
    finally:
        monkeypatch.undo()
        reload_settings()
    store = JsonStore(tmp_path / "state" / "aios.json")
    assert store.get("leads", "acme-logistics") == mine, "an existing row is never touched"
    assert {r.key for r in store.list("leads", {"status": "new"})} == {"northwind-robotics", "blue-harbor-foods", "cobalt-dental", "fjord-analytics"}
