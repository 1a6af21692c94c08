"""Secrets where they belong: after a drill-like set of runs with canary keys and a canary alert token,
nothing the Prefect server stored (every text and JSON column of every table in its database) holds one.

The keys come from the environment, the alert URL from the Prefect Secret block `aios-alert-urls`
(stored encrypted by the server, so even its table holds no plain canary).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import pytest
from prefect.logging.handlers import APILogHandler

from aios.outage import deferral
from aios.outage.alerts import SECRET_BLOCK
from aios.observability.redaction import REDACTED, redact
from aios.runs.record import RunStatus, SkillRun
from flows.skill_flow import build_skill_flow
from flows.status_check import status_check

pytestmark = pytest.mark.e2e

CANARY_ANTHROPIC = "canary-anthropic-key-5e8d2a91"
CANARY_OPENAI = "canary-openai-key-0c7b44f3"
CANARY_ALERT_TOKEN = "canary-alert-token-9f3b61d2"
CANARIES = (CANARY_ANTHROPIC, CANARY_OPENAI, CANARY_ALERT_TOKEN)
MARKER = "scan-marker-4d2e"  # not a secret: proves the scan sees what the runs stored
CLAUDE_API = "Claude API (api.anthropic.com)"
REQUIRED_TABLES = {"flow_run", "deployment", "artifact", "events", "event_resources", "log", "task_run", "variable"}


@pytest.fixture
def alert_receiver():
    """A json:// alert receiver that records each alert's Authorization header."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append(self.headers.get("authorization", ""))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, received
    server.shutdown()


@pytest.fixture
def canaries(emulator, alert_receiver, monkeypatch):
    """Canary provider keys in the environment; the alert URL (with a canary token) only in a Secret block."""
    from prefect.blocks.system import Secret

    from aios.observability import redaction as logs
    from aios.config.runtime import reset_runtime
    from aios.config.settings import reload_settings

    port, received = alert_receiver
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_ANTHROPIC)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_OPENAI)
    monkeypatch.delenv("AIOS_ALERT_URLS", raising=False)
    Secret(value=f"json://aios:{CANARY_ALERT_TOKEN}@127.0.0.1:{port}/alerts").save(SECRET_BLOCK, overwrite=True)
    reload_settings()
    reset_runtime()
    try:
        yield received
    finally:
        asyncio.run(_delete_block())
        monkeypatch.undo()
        reload_settings()
        reset_runtime()
        logs.refresh_secrets()


async def _delete_block() -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        await client.delete_block_document((await client.read_block_document_by_name(SECRET_BLOCK, "secret")).id)


async def run_flow(name: str, inputs: dict | None = None):
    state = await build_skill_flow(name)(inputs=inputs, return_state=True)
    return state, SkillRun.model_validate(await state.result(raise_on_failure=False))


async def stored_text(database_url: str, needles: tuple[str, ...]) -> tuple[set[str], dict[str, list[str]]]:
    """Every public table scanned, and for each needle the `table.column`s whose text holds it."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'ARRAY', 'USER-DEFINED')"
        )
        found: dict[str, list[str]] = {n: [] for n in needles}
        for row in columns:
            table, column = row["table_name"], row["column_name"]
            for needle in needles:
                hit = await conn.fetchval(
                    f'SELECT 1 FROM "{table}" WHERE "{column}"::text LIKE $1 LIMIT 1', f"%{needle}%"
                )
                if hit:
                    found[needle].append(f"{table}.{column}")
        return {r["table_name"] for r in columns}, found
    finally:
        await conn.close()


async def wait_for_events(database_url: str, flow_run_id: str, timeout: float = 30) -> None:
    """The server persists events asynchronously: wait until the critical run's are in."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for _ in range(int(timeout * 2)):
            if await conn.fetchval("SELECT count(*) FROM events WHERE resource_id = $1", f"prefect.flow-run.{flow_run_id}"):
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    raise AssertionError(f"no events of flow run {flow_run_id} reached the database within {timeout:.0f} s")


async def test_no_canary_key_or_alert_token_in_anything_the_prefect_server_stored(deployed, emulator, canaries):
    received = canaries
    parked_id = None
    try:
        emulator.set_status(
            "claude", components={CLAUDE_API: "major_outage"},
            incidents=[{"name": "Elevated errors", "status": "investigating", "impact": "critical", "components": [CLAUDE_API]}],
        )
        emulator.set_fault("anthropic", "overloaded")
        report = await status_check()
        assert report["claude_healthy"] is False and await deferral.is_paused()
        expected_auth = "Basic " + base64.b64encode(f"aios:{CANARY_ALERT_TOKEN}".encode()).decode()
        assert received == [expected_auth], "the alert went out through the Secret block's URL"
        assert redact(f"posting with {CANARY_ALERT_TOKEN}") == f"posting with {REDACTED}", "registered when loaded"

        critical_state, critical = await run_flow(
            "research-lead", {"company": MARKER, "website": "https://example.com", "contact": "Dana"}
        )
        assert critical.status is RunStatus.completed and critical.provider == "openai"
        deferred_state, deferred = await run_flow("weekly-report")
        assert deferred.status is RunStatus.deferred
        parked_id = deferred.parked_run_id
        dropped_state, _ = await run_flow("daily-news")
        assert dropped_state.name == "Dropped"

        await APILogHandler.aflush()
        database_url = deployed.database_url
        await wait_for_events(database_url, str(critical_state.state_details.flow_run_id))
        tables, found = await stored_text(database_url, (*CANARIES, MARKER))
    finally:
        if parked_id:
            from prefect.client.orchestration import get_client

            async with get_client() as client:
                await client.delete_flow_run(parked_id)
        await deferral.set_paused(False)

    assert REQUIRED_TABLES <= tables, f"tables not scanned: {REQUIRED_TABLES - tables}"
    assert any(where.startswith("flow_run.") for where in found[MARKER]), f"the scan sees the runs' parameters: {found[MARKER]}"
    leaks = {canary: found[canary] for canary in CANARIES if found[canary]}
    assert not leaks, f"canaries stored by the Prefect server: {leaks}"
