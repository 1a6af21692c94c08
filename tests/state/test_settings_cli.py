"""Settings from the environment, the factory, the `aios state` sub-app, and mounting the emulators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient
from typer.testing import CliRunner

from aios.emulators.airtable import build_airtable_app
from aios.emulators.sheets import build_sheets_app
from aios.state import JsonStore, StateError, StateSettings, open_store
from aios.cli.state import state_app
from aios.state.journal import JournaledStore

from .conftest import AIRTABLE_TOKEN, Emulator, new_airtable_base


def test_defaults_are_rooted_at_aios_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_HOME", str(tmp_path))
    s = StateSettings()
    assert s.backend == "json"
    assert s.json_path() == tmp_path / "state" / "aios.json"
    assert s.journal_file() == tmp_path / "state" / "journal.jsonl"
    store = open_store()
    assert isinstance(store, JsonStore) and store.path == tmp_path / "state" / "aios.json"
    store.upsert("t", "k", {"a": 1})
    assert (tmp_path / "state" / "aios.json").exists()


def test_env_vars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_HOME", str(tmp_path))
    monkeypatch.setenv("AIOS_STATE_PATH", "elsewhere/s.json")
    monkeypatch.setenv("AIOS_STATE_JOURNAL_PATH", "/tmp/abs-journal.jsonl")
    monkeypatch.setenv("AIOS_STATE_SKILL_BACKENDS", '{"research-lead": "airtable", "inbox": "sheets"}')
    monkeypatch.setenv("AIOS_STATE_RETRY_ATTEMPTS", "7")
    monkeypatch.setenv("AIOS_STATE_RETRY_MAX_TOTAL", "12.5")
    monkeypatch.setenv("AIRTABLE_API_KEY", "from-airtable-env")
    s = StateSettings()
    assert s.json_path() == tmp_path / "elsewhere" / "s.json"
    assert s.journal_file() == Path("/tmp/abs-journal.jsonl")
    assert s.backend_for("research-lead") == "airtable"
    assert s.backend_for("inbox") == "sheets"
    assert s.backend_for("other") == "json" and s.backend_for(None) == "json"
    assert s.retry_policy().attempts == 7 and s.retry_policy().max_total == 12.5
    assert s.airtable_token.get_secret_value() == "from-airtable-env"
    monkeypatch.setenv("AIOS_STATE_AIRTABLE_TOKEN", "explicit")
    assert StateSettings().airtable_token.get_secret_value() == "explicit"


def test_skill_override_picks_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airtable_emulator: Emulator) -> None:
    monkeypatch.setenv("AIOS_STATE_SKILL_BACKENDS", '{"research-lead": "airtable"}')
    monkeypatch.setenv("AIOS_STATE_AIRTABLE_BASE_ID", new_airtable_base(airtable_emulator))
    monkeypatch.setenv("AIRTABLE_API_KEY", AIRTABLE_TOKEN)
    monkeypatch.setenv("AIOS_STATE_AIRTABLE_API_URL", airtable_emulator.url)
    lead = open_store(skill="research-lead")
    assert isinstance(lead, JournaledStore) and lead.backend == "airtable"
    assert lead.upsert("leads", "acme", {"a": 1}).version == 1
    assert isinstance(open_store(skill="someone-else"), JsonStore)
    assert isinstance(open_store("json", skill="research-lead"), JsonStore)  # explicit wins


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"AIOS_STATE_BACKEND": "postgres"}, "AIOS_STATE_BACKEND"),
        ({"AIOS_STATE_BACKEND": "sheets"}, "AIOS_STATE_SHEETS_SPREADSHEET"),
        ({"AIOS_STATE_BACKEND": "sheets", "AIOS_STATE_SHEETS_SPREADSHEET": "x"}, "AIOS_STATE_SHEETS_CREDENTIALS_FILE"),
        ({"AIOS_STATE_BACKEND": "airtable"}, "AIOS_STATE_AIRTABLE_BASE_ID"),
        ({"AIOS_STATE_BACKEND": "airtable", "AIOS_STATE_AIRTABLE_BASE_ID": "app1"}, "AIRTABLE_API_KEY"),
        ({"AIOS_STATE_BACKEND": "sheets", "AIOS_STATE_SHEETS_SPREADSHEET": "x",
          "AIOS_STATE_SHEETS_CREDENTIALS_FILE": "/nonexistent/creds.json"}, "/nonexistent/creds.json"),
    ],
)
def test_misconfiguration_is_one_line(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problem: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(StateError) as ei:
        open_store()
    assert problem in str(ei.value) and "\n" not in str(ei.value)


def test_unknown_backend_argument() -> None:
    with pytest.raises(StateError, match="unknown backend 'mongo'"):
        open_store("mongo")


def test_cli_status_and_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airtable_emulator: Emulator) -> None:
    monkeypatch.setenv("AIOS_STATE_BACKEND", "airtable")
    monkeypatch.setenv("AIOS_STATE_AIRTABLE_BASE_ID", new_airtable_base(airtable_emulator))
    monkeypatch.setenv("AIRTABLE_API_KEY", AIRTABLE_TOKEN)
    monkeypatch.setenv("AIOS_STATE_AIRTABLE_API_URL", airtable_emulator.url)
    monkeypatch.setenv("AIOS_STATE_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("AIOS_STATE_RETRY_INITIAL_DELAY", "0.01")
    runner = CliRunner()
    res = runner.invoke(state_app, ["status"])
    assert res.exit_code == 0 and "nothing pending" in res.output
    store = open_store()
    airtable_emulator.fault("down")
    try:
        store.upsert("leads", "a", {"n": 1})
        store.upsert("leads", "b", {"n": 2})
        res = runner.invoke(state_app, ["status", "--json"])
        assert res.exit_code == 0
        info = json.loads(res.output)
        assert info["pending"] == 2 and info["by_table"][0]["table"] == "leads"
        res = runner.invoke(state_app, ["sync"])
        assert res.exit_code == 1 and "unavailable" in res.output
        assert "Traceback" not in res.output
    finally:
        airtable_emulator.clear_fault()
    res = runner.invoke(state_app, ["sync"])
    assert res.exit_code == 0, res.output
    assert "applied 2" in res.output
    res = runner.invoke(state_app, ["status", "--json"])
    assert json.loads(res.output)["pending"] == 0
    assert store.get("leads", "b").data == {"n": 2}


def test_emulators_work_when_mounted_under_a_prefix() -> None:
    app = Starlette(
        routes=[
            Mount("/sheets", app=build_sheets_app(["t1"])),
            Mount("/airtable", app=build_airtable_app(["t2"])),
        ]
    )
    with TestClient(app) as client:
        client.put("/sheets/_control/spreadsheets/S1", json={"sheets": {"My Sheet": [["a", "b"]]}})
        r = client.get("/sheets/v4/spreadsheets/S1/values/'My%20Sheet'!A1%3AB1", headers={"Authorization": "Bearer t1"})
        assert r.status_code == 200 and r.json()["values"] == [["a", "b"]]
        assert client.get("/sheets/v4/spreadsheets/S1").status_code == 401
        client.put("/airtable/_control/bases/app1", json={"tables": [{"name": "T x", "fields": [{"name": "key", "type": "singleLineText"}]}]})
        r = client.post("/airtable/v0/app1/T%20x", json={"records": [{"fields": {"key": "k"}}]}, headers={"Authorization": "Bearer t2"})
        assert r.status_code == 200, r.text
        r = client.get("/airtable/v0/app1/T%20x", params={"filterByFormula": "{key}='k'"}, headers={"Authorization": "Bearer t2"})
        assert [x["fields"]["key"] for x in r.json()["records"]] == ["k"]
        assert client.get("/airtable/_control/requests").json()["count"] == 2


def test_auto_create_mode() -> None:
    app = Starlette(routes=[Mount("/sheets", app=build_sheets_app(["t"], auto_create=True)),
                            Mount("/airtable", app=build_airtable_app(["t"], auto_create=True))])
    with TestClient(app) as client:
        auth = {"Authorization": "Bearer t"}
        assert client.get("/sheets/v4/spreadsheets/anything", headers=auth).json()["sheets"] == []
        assert client.get("/airtable/v0/meta/bases/appAny/tables", headers=auth).json() == {"tables": []}


def test_bad_env_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOS_STATE_SKILL_BACKENDS", '{"x": "postgres"}')
    with pytest.raises(StateError) as ei:
        open_store()
    assert "AIOS_STATE_SKILL_BACKENDS" in str(ei.value) and "\n" not in str(ei.value)
    monkeypatch.setenv("AIOS_STATE_SKILL_BACKENDS", "{}")
    monkeypatch.setenv("AIOS_STATE_RETRY_ATTEMPTS", "many")
    res = CliRunner().invoke(state_app, ["status"])
    assert res.exit_code == 2 and "AIOS_STATE_RETRY_ATTEMPTS" in res.output and "Traceback" not in res.output
