"""`aios status` says what is missing on a running Prefect server, and the command that creates it."""

from __future__ import annotations

import json

from tests.cli.conftest import aios


def test_status_names_a_missing_work_pool_and_the_command_that_creates_it(stack_env, project):
    env = stack_env | {"AIOS_WORK_POOL": "no-such-pool"}
    result = aios("status", env=env, cwd=project)
    assert result.code == 0, result.err
    assert "no Prefect server" not in result.out
    assert "the Prefect server has no work pool 'no-such-pool'; `aios deploy` creates it" in result.out

    data = json.loads(aios("status", "--json", env=env, cwd=project).out)
    assert data["deferred_queue_paused"] is None
    assert data["deferred_queue_problem"] == "the Prefect server has no work pool 'no-such-pool'; `aios deploy` creates it"


def test_status_says_when_there_is_no_server_at_all(home_env, project):
    result = aios("status", env=home_env | {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, cwd=project)
    assert result.code == 0, result.err
    assert "no Prefect server at http://127.0.0.1:9/api" in result.out


def test_a_command_that_needs_the_server_says_it_cannot_reach_it_in_one_line(home_env, project):
    result = aios("deferred", env=home_env | {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, cwd=project)
    assert result.code == 1, result.err
    assert result.err_lines == ["error: cannot reach the Prefect server at http://127.0.0.1:9/api: start it, or point PREFECT_API_URL at one"]
