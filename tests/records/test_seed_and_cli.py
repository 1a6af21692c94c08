"""The sample `leads` table, and `aios run SKILL --record KEY` refusing a skill without records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aios.state import JsonStore
from flows.records import seed_sample_records

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
