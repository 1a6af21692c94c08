"""`aios deploy` ships a Prefect automation: a provider going down (or recovering) becomes a message through
the notification block named in AIOS_NOTIFY_BLOCK, delivered by the Prefect server's own automation services."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aios.errors import ConfigError
from deployments.apply import AUTOMATION, NotifySettings, ensure_notify_automation

pytestmark = pytest.mark.e2e


@pytest.fixture
def hook_inbox():
    """A local webhook receiver; yields (url, received bodies)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


async def test_a_health_down_event_reaches_the_webhook_block_through_one_automation(stack, hook_inbox):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    from aios.core.health import Change, Health
    from flows.status_check import health_event

    url, received = hook_inbox
    await CustomWebhookNotificationBlock(
        name="aios-ops", url=url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
    ).save("aios-ops-hook", overwrite=True)
    settings = NotifySettings(block="custom-webhook/aios-ops-hook")
    try:
        first = await ensure_notify_automation(settings)
        again = await ensure_notify_automation(settings)  # a second `aios deploy` updates, never duplicates
        async with get_client() as client:
            ours = await client.read_automations_by_name(AUTOMATION)
        assert first == again and [a.id for a in ours] == [first], ours

        down = health_event(Change(subject="anthropic", old=Health.healthy, new=Health.down, detail="status page: major outage"))
        for _ in range(12):  # the server's trigger service picks new automations up within seconds: re-send until it has
            emit_event(**down)
            await asyncio.to_thread(EventsWorker.drain_all, timeout=10)
            await asyncio.sleep(5)
            if received:
                break
        assert received, "no POST reached the webhook within 60 s"
        assert received[0]["subject"] == "aios: anthropic: healthy → down", received[0]
        assert "status page: major outage" in received[0]["body"] and "aios.health.down" in received[0]["body"], received[0]
    finally:
        await ensure_notify_automation(NotifySettings(block=None))
    async with get_client() as client:
        assert await client.read_automations_by_name(AUTOMATION) == []  # without the setting, ours is gone


async def test_a_notify_block_that_does_not_exist_is_one_line_naming_the_setting(stack):
    with pytest.raises(ConfigError) as exc:
        await ensure_notify_automation(NotifySettings(block="custom-webhook/nobody-made-this"))
    assert exc.value.path == "AIOS_NOTIFY_BLOCK" and "nobody-made-this" in exc.value.problem
    with pytest.raises(ConfigError) as exc:
        await ensure_notify_automation(NotifySettings(block="just-a-name"))
    assert "<block-type-slug>/<block-name>" in exc.value.problem
