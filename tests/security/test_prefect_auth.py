"""An authenticated Prefect API: a server started with PREFECT_SERVER_API_AUTH_STRING refuses anonymous
requests, and a worker, an `aios` command and `aios doctor` work through PREFECT_API_AUTH_STRING.

Its own server (SQLite in a temporary folder, loopback, a free port), not the session's stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aios.validation.doctor import Status, judge_prefect_api
from aios.drill.stack import Process, free_port, spawn, wait_http

ROOT = Path(__file__).resolve().parents[2]
AUTH = "aios-admin:s3cret-auth-string-7c41"
POOL = "aios-auth-test"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`prefect server start` with an auth string; yields (api_url, client env without the string)."""
    workdir = tmp_path_factory.mktemp("auth-server")
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env = {
        **base,
        "PREFECT_HOME": str(workdir / "prefect"),
        "PREFECT_SERVER_API_AUTH_STRING": AUTH,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    proc: Process = spawn(
        "prefect-server",
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env, workdir, workdir,
    )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        wait_http(f"{api_url}/health", 120, proc.proc, proc.log)  # /api/health is exempt from the auth check
        client_env = {**base, "PREFECT_HOME": str(workdir / "client"), "PREFECT_API_URL": api_url, "AIOS_HOME": str(ROOT)}
        yield api_url, client_env
    finally:
        proc.stop()


def basic(auth: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_an_anonymous_request_gets_401_and_the_health_probe_stays_open(server):
    api_url, _ = server
    for method, path in (("POST", "/flows/filter"), ("GET", "/admin/version"), ("POST", "/block_documents/filter")):
        response = httpx.request(method, api_url + path, json={} if method == "POST" else None)
        assert response.status_code == 401, path
        assert response.json() == {"exception_message": "Unauthorized"}
    wrong = httpx.get(api_url + "/admin/version", headers=basic("aios-admin:wrong"))
    assert wrong.status_code == 401
    assert httpx.get(api_url + "/admin/version", headers=basic(AUTH)).status_code == 200
    assert httpx.get(api_url + "/health").status_code == 200


def test_a_worker_runs_only_with_the_auth_string(server):
    api_url, env = server
    worker = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process", "--run-once"]
    refused = run(worker, env)
    assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr
    assert httpx.get(f"{api_url}/work_pools/{POOL}", headers=basic(AUTH)).status_code == 404, "nothing was created"

    accepted = run(worker, {**env, "PREFECT_API_AUTH_STRING": AUTH})
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    pool = httpx.get(f"{api_url}/work_pools/{POOL}", headers=basic(AUTH))
    assert pool.status_code == 200 and pool.json()["type"] == "process"
    workers = httpx.post(f"{api_url}/work_pools/{POOL}/workers/filter", json={}, headers=basic(AUTH))
    assert workers.status_code == 200 and len(workers.json()) == 1, "the worker's heartbeat reached the server"


def test_an_aios_command_reads_the_server_only_with_the_auth_string(server):
    _, env = server
    refused = run([sys.executable, "-m", "aios.cli", "deferred", "--json"], env)
    assert refused.returncode != 0 and "401" in refused.stderr + refused.stdout
    assert AUTH not in refused.stderr + refused.stdout
    accepted = run([sys.executable, "-m", "aios.cli", "deferred", "--json"], {**env, "PREFECT_API_AUTH_STRING": AUTH})
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout) == []


def doctor_row(env: dict[str, str]) -> dict:
    proc = run([sys.executable, "-m", "aios.cli", "doctor", "--json"], env)
    rows = [c for c in json.loads(proc.stdout)["checks"] if c["check"] == "prefect api"]
    assert len(rows) == 1, proc.stdout
    return rows[0]


def test_doctor_fails_a_client_without_the_auth_string_and_passes_one_with_it(server):
    api_url, env = server
    missing = doctor_row(env)
    assert (missing["subject"], missing["status"]) == (api_url, "fail")
    assert "requires authentication and PREFECT_API_AUTH_STRING is not set" in missing["detail"]
    wrong = doctor_row({**env, "PREFECT_API_AUTH_STRING": "aios-admin:wrong"})
    assert wrong["status"] == "fail" and "rejects PREFECT_API_AUTH_STRING" in wrong["detail"]
    good = doctor_row({**env, "PREFECT_API_AUTH_STRING": AUTH})
    assert good["status"] == "ok" and "refuses unauthenticated requests" in good["detail"]


# The doctor's verdicts for servers this test cannot start without exposing them beyond this machine.

REMOTE = "http://prefect.internal.example:4200/api"


def test_doctor_fails_a_remote_server_that_answers_anonymous_requests():
    status, detail = judge_prefect_api(REMOTE, auth_string_set=False, anonymous=200, authenticated=None)
    assert status is Status.fail and "answers without authentication" in detail


def test_doctor_fails_a_remote_url_without_an_auth_string_even_when_unreachable():
    status, detail = judge_prefect_api(REMOTE, auth_string_set=False, anonymous=None, authenticated=None)
    assert status is Status.fail and "PREFECT_API_AUTH_STRING is not set" in detail


def test_doctor_fails_a_remote_server_that_ignores_the_auth_string():
    status, detail = judge_prefect_api(REMOTE, auth_string_set=True, anonymous=200, authenticated=None)
    assert status is Status.fail and "set PREFECT_SERVER_API_AUTH_STRING on the server" in detail


def test_doctor_warns_about_basic_auth_over_plain_http_beyond_loopback():
    status, detail = judge_prefect_api(REMOTE, auth_string_set=True, anonymous=401, authenticated=200)
    assert status is Status.warn and "TLS proxy" in detail
    status, _ = judge_prefect_api(REMOTE.replace("http:", "https:"), auth_string_set=True, anonymous=401, authenticated=200)
    assert status is Status.ok


def test_doctor_accepts_an_open_server_on_loopback():
    status, detail = judge_prefect_api("http://127.0.0.1:4200/api", auth_string_set=False, anonymous=200, authenticated=None)
    assert status is Status.ok and detail.startswith("loopback only")
