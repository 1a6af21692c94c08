"""Local servers stay local: the emulators bind loopback unless told otherwise, and their control API
(fault injection, request logs) never answers a client on another machine."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from aios.emulators.app import build_app
from aios.loopback import is_loopback

REMOTE = ("10.0.0.5", 1234)
LOCAL = ("127.0.0.1", 1234)


async def get(client_address: tuple[str, int], path: str, method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=build_app(), client=client_address)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        return await client.request(method, path)


@pytest.mark.parametrize(
    "path", ["/_control/health", "/_control/requests", "/sheets/_control/log", "/airtable/_control/log"]
)
async def test_control_routes_refuse_a_client_on_another_machine(path):
    response = await get(REMOTE, path)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "the control API answers loopback clients only"


async def test_a_remote_client_cannot_inject_a_fault():
    response = await get(REMOTE, "/_control/faults", method="DELETE")
    assert response.status_code == 403


async def test_control_routes_answer_a_loopback_client():
    assert (await get(LOCAL, "/_control/health")).status_code == 200
    assert (await get(("::1", 1234), "/_control/health")).status_code == 200


async def test_the_emulated_apis_still_answer_a_remote_client():
    response = await get(REMOTE, "/status/claude/api/v2/summary.json")
    assert response.status_code == 200 and "components" in response.json()


@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True), ("::ffff:127.0.0.1", True),
     ("0.0.0.0", False), ("10.0.0.5", False), ("example.com", False), ("", False)],
)
def test_loopback_addresses(host, local):
    assert is_loopback(host) is local


def aios(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aios.cli", *args], capture_output=True, text=True, timeout=60)


def test_aios_emulate_refuses_a_non_loopback_host_without_allow_remote():
    proc = aios("emulate", "--host", "0.0.0.0", "--port", "1")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--host 0.0.0.0: not a loopback address" in lines[0] and "--allow-remote" in lines[0]
    assert "export" not in proc.stdout, "nothing printed before the refusal"


def test_the_emulator_module_refuses_a_non_loopback_host_without_allow_remote():
    proc = subprocess.run(
        [sys.executable, "-m", "aios.emulators.server", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: --host 0.0.0.0: not a loopback address")


def test_aios_emulate_with_allow_remote_warns_before_binding():
    # 192.0.2.1 (TEST-NET-1) is not an address of this machine: the bind fails right after the warning,
    # so nothing is exposed while the test proves the warning comes first.
    proc = aios("emulate", "--host", "192.0.2.1", "--port", "1", "--allow-remote")
    assert proc.stderr.startswith("warning: the emulators listen on 192.0.2.1"), proc.stderr
    assert "/_control routes still answer loopback clients only" in proc.stderr
    assert proc.returncode != 0, "the bind to an address this machine does not have fails"
