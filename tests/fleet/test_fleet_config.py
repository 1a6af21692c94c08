"""How a fleet is configured: the pull section of prefect.yaml, and refusing a state that hosts would not share."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aios.validation.doctor import DoctorReport, Status, check_fleet
from aios.outage import health_store
from deployments import prefect_yaml
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "skills", tmp_path / "skills")
    return tmp_path


def test_repository_setting_writes_a_git_clone_pull_step_into_the_worker_directory(project, monkeypatch):
    monkeypatch.setenv("AIOS_DEPLOY_REPOSITORY", "https://github.com/acme/aios.git")
    monkeypatch.setenv("AIOS_DEPLOY_BRANCH", "main")
    monkeypatch.setenv("AIOS_DEPLOY_DIRECTORY", "{{ $AIOS_WORKER_DIR }}")
    prefect_yaml.write(project)
    written = prefect_yaml.read(project / "prefect.yaml")
    assert written["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $AIOS_WORKER_DIR }}"}},
        {"prefect.deployments.steps.git_clone": {"repository": "https://github.com/acme/aios.git", "branch": "main", "clone_directory_name": "aios"}},
    ]
    assert prefect_yaml.check(project) == []
    monkeypatch.setenv("AIOS_DEPLOY_BRANCH", "release")
    assert prefect_yaml.check(project) == ["prefect.yaml: the pull section differs from AIOS_DEPLOY_REPOSITORY/BRANCH/DIRECTORY"]


def test_without_pull_settings_prefect_yaml_keeps_prefects_default(project, monkeypatch):
    for name in ("AIOS_DEPLOY_REPOSITORY", "AIOS_DEPLOY_BRANCH", "AIOS_DEPLOY_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    prefect_yaml.write(project)
    assert prefect_yaml.read(project / "prefect.yaml")["pull"] is None


@pytest.mark.parametrize(
    ("fleet", "api_url", "mode"),
    [
        (None, "http://127.0.0.1:4200/api", "single"),
        (None, "http://localhost:4200/api", "single"),
        (None, "http://prefect.internal:4200/api", "multi"),
        (None, "http://10.0.0.5:4200/api", "multi"),
        ("multi", "http://127.0.0.1:4200/api", "multi"),
        ("single", "http://10.0.0.5:4200/api", "single"),
    ],
)
def test_fleet_mode_is_set_or_read_from_where_the_prefect_api_is(monkeypatch, fleet, api_url, mode):
    if fleet:
        monkeypatch.setenv("AIOS_FLEET", fleet)
    else:
        monkeypatch.delenv("AIOS_FLEET", raising=False)
    monkeypatch.setenv("PREFECT_API_URL", api_url)
    assert health_store.fleet_mode() == mode


def test_doctor_fails_a_fleet_whose_run_records_stay_in_a_local_json_file(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.internal:4200/api")
    monkeypatch.delenv("AIOS_FLEET", raising=False)
    monkeypatch.setenv("AIOS_STATE_BACKEND", "json")
    report = DoctorReport()
    check_fleet(report)
    [row] = report.checks
    assert row.status is Status.fail
    assert "AIOS_STATE_BACKEND=json" in row.detail and "PREFECT_API_URL is not on this machine" in row.detail


def test_doctor_fails_a_fleet_whose_breakers_stay_in_the_default_local_file(monkeypatch):
    monkeypatch.setenv("AIOS_FLEET", "multi")
    monkeypatch.setenv("AIOS_STATE_BACKEND", "airtable")
    monkeypatch.delenv("AIOS_BREAKER_STORE", raising=False)
    monkeypatch.delenv("AIOS_BREAKER_REDIS_URL", raising=False)
    report = DoctorReport()
    check_fleet(report)
    [row] = report.checks
    assert row.status is Status.fail
    assert row.detail.startswith("breakers in the default local file on a fleet (AIOS_FLEET=multi)")
    assert "AIOS_BREAKER_REDIS_URL" in row.detail and "AIOS_STATE_BACKEND" not in row.detail


def test_doctor_fails_a_fleet_with_one_skill_recording_in_a_local_json_file(monkeypatch):
    monkeypatch.setenv("AIOS_FLEET", "multi")
    monkeypatch.setenv("AIOS_STATE_BACKEND", "airtable")
    monkeypatch.setenv("AIOS_STATE_SKILL_BACKENDS", '{"weekly-report": "json"}')
    monkeypatch.setenv("AIOS_BREAKER_REDIS_URL", "redis://127.0.0.1:6379/0")
    report = DoctorReport()
    check_fleet(report)
    assert report.checks[0].status is Status.fail
    assert report.checks[0].detail.startswith("AIOS_STATE_SKILL_BACKENDS puts weekly-report on json on a fleet")


@pytest.mark.parametrize("breakers", [{"AIOS_BREAKER_REDIS_URL": "redis://127.0.0.1:6379/0"}, {"AIOS_BREAKER_STORE": "memory"}])
def test_doctor_accepts_a_fleet_on_a_shared_state_store_and_breakers_off_the_disk(monkeypatch, breakers):
    monkeypatch.setenv("AIOS_FLEET", "multi")
    monkeypatch.setenv("AIOS_STATE_BACKEND", "airtable")
    monkeypatch.delenv("AIOS_STATE_SKILL_BACKENDS", raising=False)
    for name in ("AIOS_BREAKER_STORE", "AIOS_BREAKER_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in breakers.items():
        monkeypatch.setenv(name, value)
    report = DoctorReport()
    check_fleet(report)
    assert [(c.check, c.status) for c in report.checks] == [("fleet", Status.ok)]
    assert health_store.on_prefect_server() is False


def test_a_bad_aios_fleet_value_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("AIOS_FLEET", "many")
    report = DoctorReport()
    check_fleet(report)
    assert report.checks[0].status is Status.fail and "AIOS_FLEET" in report.checks[0].detail
