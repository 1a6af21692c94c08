"""`aios server start|stop|status`: one Prefect server kept for the project, used by every command.

Driven as a user drives it: real `aios` processes, a throwaway copy of the project, the session's
emulators for the models, and no PREFECT_API_URL anywhere, so only the kept server's record can
point a command at a server.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from aios.config import kept_server as kept
from tests.cli.conftest import aios, clean_env


@pytest.fixture
def kept_env(stack, emulator, project):
    """The session's emulators as the providers; no Prefect setting at all (PREFECT_HOME lands in .aios/)."""
    env = clean_env(
        AIOS_HOME=str(project),
        AIOS_MEMORY_EXTRACTION="false",
        ANTHROPIC_BASE_URL=stack.env["ANTHROPIC_BASE_URL"],
        OPENAI_BASE_URL=stack.env["OPENAI_BASE_URL"],
        ANTHROPIC_API_KEY=stack.env["ANTHROPIC_API_KEY"],
        OPENAI_API_KEY=stack.env["OPENAI_API_KEY"],
        AIOS_STATUS_CLAUDE_URL=stack.env["AIOS_STATUS_CLAUDE_URL"],
        AIOS_STATUS_OPENAI_URL=stack.env["AIOS_STATUS_OPENAI_URL"],
    )
    yield env
    kept.stop(project)  # whatever the test did, no server outlives it


def imported(stderr: str) -> set[str]:
    """Top-level packages a process imported, from its `-X importtime` lines (PYTHONPROFILEIMPORTTIME=1)."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in stderr.splitlines() if line.startswith("import time:")}


HEAVY = {"prefect", "anthropic", "openai"}


def status(env, project) -> dict:
    result = aios("server", "status", "--json", env=env, cwd=project)
    return json.loads(result.out) | {"exit": result.code}


@pytest.mark.e2e
def test_two_consecutive_runs_go_through_the_warm_runner_to_the_kept_server_and_stop_ends_both(kept_env, project, emulator):
    started = aios("server", "start", "--no-ui", "--json", env=kept_env, cwd=project, timeout=400)
    assert started.code == 0, started.err
    server = json.loads(started.out)
    assert server["running"] and server["started"] and server["url"].startswith("http://127.0.0.1:")
    assert (project / ".aios" / "server.json").is_file()

    record = project / ".aios" / "server.json"
    assert record.stat().st_mode & 0o777 == 0o600, "the runner's token is readable by this user only"
    runner = server["runner"]
    assert runner["running"] and runner["port"], server

    run_ids = []
    for _ in range(2):  # the fast path: this process imports neither Prefect nor an SDK
        result = aios("run", "research-lead", "--json", env=kept_env | {"PYTHONPROFILEIMPORTTIME": "1"}, cwd=project)
        assert result.code == 0, result.err
        assert "aios server start" not in result.err, "no hint: a server is up"
        assert imported(result.err) & HEAVY == set() and "aios" in imported(result.err)
        run_ids.append(json.loads(result.out)["run_id"])
        now = status(kept_env, project)
        assert (now["exit"], now["identity"], now["pid"]) == (0, server["identity"], server["pid"]), "the same server answered"
        assert now["runner"]["pid"] == runner["pid"], "the same warm runner ran it"

    assert run_ids[0] != run_ids[1]
    for run_id in run_ids:  # both runs are research-lead flow runs in the kept server's database
        flow_run = httpx.get(f"{server['url']}/flow_runs/{run_id}", timeout=10).json()
        assert flow_run["state"]["type"] == "COMPLETED", flow_run["state"]
        assert httpx.get(f"{server['url']}/flows/{flow_run['flow_id']}", timeout=10).json()["name"] == "research-lead"

    token = json.loads(record.read_text())["token"]
    runner_url = f"http://127.0.0.1:{runner['port']}"
    assert httpx.post(f"{runner_url}/run", json={"skill": "research-lead"}, timeout=10).status_code == 401
    assert httpx.get(f"{runner_url}/health", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    assert httpx.get(f"{runner_url}/health", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200

    unknown = aios("run", "no-such-skill", env=kept_env | {"PYTHONPROFILEIMPORTTIME": "1"}, cwd=project)
    assert unknown.code == 2 and imported(unknown.err) & HEAVY == set(), "the runner's preflight refused it"
    complaint = [line for line in unknown.err_lines if not line.startswith("import time:")]
    assert len(complaint) == 1 and complaint[0].startswith("error:") and "no-such-skill" in complaint[0], unknown.err

    other = aios("run", "research-lead", "--json", env=kept_env | {"AIOS_LOG_LEVEL": "WARNING", "PYTHONPROFILEIMPORTTIME": "1"}, cwd=project)
    assert other.code == 0, other.err
    assert "other settings" in other.err and "prefect" in imported(other.err), "other settings: run in this process"
    assert httpx.get(f"{server['url']}/flow_runs/{json.loads(other.out)['run_id']}", timeout=10).status_code == 200
    again = aios("server", "start", "--json", env=kept_env, cwd=project)
    assert json.loads(again.out)["started"] is False and json.loads(again.out)["identity"] == server["identity"]

    stopped = aios("server", "stop", env=kept_env, cwd=project)
    assert stopped.code == 0 and "stopped" in stopped.out, stopped.err
    assert not (project / ".aios" / "server.json").exists()
    assert not kept.is_our_process(kept.KeptServer(server["url"], server["pid"], server["identity"], "sqlite", 0))
    assert not kept.runner_is_ours(kept.KeptServer(server["url"], 0, "", "sqlite", 0, runner["port"], runner["pid"])), "the runner stopped too"
    assert status(kept_env, project) == {"running": False, "exit": 1}


def write_record(project, pid: int, port: int = 4999) -> None:
    record = {"url": f"http://127.0.0.1:{port}/api", "pid": pid, "identity": "x" * 32, "database": "sqlite", "started_at": 0}
    (project / ".aios").mkdir(exist_ok=True)
    (project / ".aios" / "server.json").write_text(json.dumps(record))


def test_a_record_whose_process_is_gone_is_removed_and_not_used(home_env, project):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_record(project, int(gone.stdout))
    result = aios("server", "status", env=home_env, cwd=project)
    assert result.code == 1 and "no kept server" in result.out
    assert not (project / ".aios" / "server.json").exists()


def test_stop_never_signals_a_process_that_is_not_our_server(home_env, project):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        write_record(project, stranger.pid)  # the recorded pid now belongs to another program
        server, was_running = kept.stop(project)
        assert server is not None and server.pid == stranger.pid and was_running is False
        assert stranger.poll() is None, "the other program still runs"
        assert not (project / ".aios" / "server.json").exists()

        write_record(project, stranger.pid)
        result = aios("server", "stop", env=home_env, cwd=project)
        assert result.code == 0, result.err
        assert stranger.poll() is None, "the other program still runs"
        assert not (project / ".aios" / "server.json").exists(), "the stale record is cleaned"
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.e2e
def test_a_run_with_no_server_up_says_once_how_to_start_one_and_still_answers(kept_env, project):
    result = aios("run", "research-lead", "--json", env=kept_env, cwd=project, timeout=300)
    assert result.code == 0, result.err
    assert json.loads(result.out)["status"] == "completed"
    assert result.err.count("`aios server start` keeps one running") == 1, result.err


def test_only_a_plain_run_is_sent_to_the_warm_runner():
    from aios.runs.runner import parse_run_argv

    assert parse_run_argv(["run", "research-lead", "-i", "company=Acme", "--input=size=40", "--json"]) == (
        "research-lead", ["company=Acme", "size=40"], True)
    assert parse_run_argv(["run", "research-lead"]) == ("research-lead", [], False)
    for argv in (["run", "research-lead", "--record", "k1"], ["run", "--help"], ["run", "research-lead", "-h"],
                 ["run", "research-lead", "-i"], ["skills"], ["run"]):
        assert parse_run_argv(argv) is None, argv  # the full CLI handles (and explains) these


def test_the_runner_serves_only_clients_with_the_same_settings():
    from aios.runs.runner import settings_fingerprint

    base = {"ANTHROPIC_API_KEY": "k1", "AIOS_STATE_BACKEND": "json", "PATH": "/bin", "PREFECT_HOME": "/p"}
    same = settings_fingerprint("t", base)
    assert settings_fingerprint("t", base | {"PATH": "/usr/bin", "PREFECT_API_URL": "http://127.0.0.1:1/api", "AIOS_HOME": "/x"}) == same
    for changed in ({"ANTHROPIC_API_KEY": "k2"}, {"AIOS_STATE_BACKEND": "airtable"}, {"OPENAI_BASE_URL": "http://x"},
                    {"PREFECT_HOME": "/q"}, {"HTTPS_PROXY": "http://proxy"}):
        assert settings_fingerprint("t", base | changed) != same, changed
    assert "k1" not in same and settings_fingerprint("other-token", base) != same
