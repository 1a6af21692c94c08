"""Per-process caches of what every run reads (skill folders, state settings) never serve a stale copy."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from aios.errors import ConfigError
from aios.skills.loader import load_skill
from aios.state.config import load_state_settings as load_settings

ROOT = Path(__file__).resolve().parents[1]


def copy_skill(tmp_path: Path) -> Path:
    folder = tmp_path / "skills" / "research-lead"
    shutil.copytree(ROOT / "skills" / "research-lead", folder)
    return folder


def contract_file(folder: Path) -> Path:
    return folder / load_skill(folder).metadata.contract


def test_an_unchanged_skill_folder_is_loaded_once(tmp_path):
    folder = copy_skill(tmp_path)
    assert load_skill(folder) is load_skill(folder)


def test_an_edited_contract_is_read_again(tmp_path):
    folder = copy_skill(tmp_path)
    before = load_skill(folder)
    path = contract_file(folder)
    schema = json.loads(path.read_text())
    schema["properties"]["added_later"] = {"type": "string"}
    path.write_text(json.dumps(schema))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))  # a coarse clock must not hide it
    after = load_skill(folder)
    assert "added_later" in after.output_schema["properties"] and "added_later" not in before.output_schema["properties"]


def test_a_skill_file_removed_after_loading_is_an_error_not_the_cached_copy(tmp_path):
    folder = copy_skill(tmp_path)
    load_skill(folder)
    (folder / "SKILL.md").unlink()
    with pytest.raises(ConfigError, match="SKILL.md: file not found"):
        load_skill(folder)


def test_state_settings_follow_the_environment(monkeypatch):
    monkeypatch.setenv("AIOS_STATE_BACKEND", "json")
    first = load_settings()
    assert first.backend == "json" and load_settings() is first
    monkeypatch.setenv("AIOS_STATE_BACKEND", "airtable")
    assert load_settings().backend == "airtable"
    monkeypatch.setenv("AIRTABLE_API_KEY", "pat-one")
    one = load_settings().airtable_token
    monkeypatch.setenv("AIRTABLE_API_KEY", "pat-two")
    assert (one.get_secret_value(), load_settings().airtable_token.get_secret_value()) == ("pat-one", "pat-two")


def test_a_state_file_edited_after_our_write_is_checked_in_full_again(tmp_path):
    from aios.state import JsonStore, StateError

    path = tmp_path / "aios.json"
    store = JsonStore(path)
    store.upsert("runs", "r1", {"n": 1})
    assert store.get("runs", "r1").data == {"n": 1}  # the bytes we wrote: served without a second check
    edited = path.read_text().replace('"format": "aios-state/1"', '"format": "aios-state/1", "extra": 1')
    path.write_text(edited)  # someone else's content now: ours no more
    with pytest.raises(StateError, match="unexpected top-level key"):
        store.get("runs", "r1")
    with pytest.raises(StateError, match="nothing was written"):
        store.upsert("runs", "r2", {"n": 2})
    assert path.read_text() == edited, "their bytes are kept"
