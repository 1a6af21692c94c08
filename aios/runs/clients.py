"""One pair of Prefect clients per process (and event loop) for the skill runs it starts in-process.

Prefect builds an async client for every flow run it starts without one in context, and a sync one
for every result-storage lookup; each loads the CA bundle (≈ 18 ms of blocked event loop on this
kind of machine, more under load) and the async one fetches a CSRF token before its first write.
A process that runs many skills in-process (the warm runner, a script; the drainer holds its own pair
per drain) needs one of each: they are built on the first run and lent to every later one on the same
loop with the same API settings (`flows.skill_flow.SkillFlow` asks for them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from prefect.context import AsyncClientContext, FlowRunContext, SyncClientContext


@dataclass
class _Shared:
    loop: asyncio.AbstractEventLoop
    settings: tuple[Any, Any]  # Prefect's `api` and `client` settings the clients were built with
    clients: AsyncClientContext
    sync_clients: SyncClientContext


_shared: _Shared | None = None


@contextlib.asynccontextmanager
async def shared_clients() -> AsyncIterator[None]:
    """Lend this process's Prefect clients to what runs inside (the flow engine takes them from context).

    A caller that already has clients in context (a parent flow, the drainer) keeps its own; so does a
    process with no API URL (Prefect starts an ephemeral server per client). Clients are built once per
    event loop and settings: a new loop or other API settings replace them.
    """
    if FlowRunContext.get() is not None or AsyncClientContext.get() is not None:
        yield
        return
    shared = await _clients_for(asyncio.get_running_loop())
    if shared is None:
        yield
        return
    # Copies: each run sets and resets its own context token, so concurrent runs can share the clients.
    with shared.sync_clients.model_copy(), shared.clients.model_copy():
        yield


async def _clients_for(loop: asyncio.AbstractEventLoop) -> _Shared | None:
    global _shared
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if not settings.api.url:
        return None
    wanted = (settings.api, settings.client)
    if _shared is not None and _shared.loop is loop and _shared.settings == wanted and not loop.is_closed():
        return _shared
    clients, sync_clients = AsyncClientContext(), SyncClientContext()
    # Entered once and never left: every run's own enter/exit then nests, so neither client is ever closed
    # while this process may lend it (a replaced pair is dropped with its loop).
    await clients.client.__aenter__()
    if settings.client.server_version_check_enabled:  # as Prefect's own client context does, once per process
        await clients.client.raise_for_api_version_mismatch_once()
    sync_clients.client.__enter__()
    _shared = _Shared(loop=loop, settings=wanted, clients=clients, sync_clients=sync_clients)
    return _shared
