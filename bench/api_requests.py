"""Counting a process's requests to the Prefect API, by endpoint: the part of a run's cost that does not
depend on the machine's load, so the steadiest evidence of what a change did (bench/failover.py (c),
bench/drain.py)."""

from __future__ import annotations

import re
from collections import Counter


class ApiRequests:
    """Counts this process's HTTP requests to the Prefect API by method and path (ids folded) while entered.

    Wraps httpx's `send` on both client classes (Prefect makes some calls on a sync client); the requests
    themselves go out unchanged. Events travel on a websocket and are not counted here.
    """

    ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

    def __init__(self, api_url: str) -> None:
        self.api_url, self.counts = api_url.rstrip("/"), Counter()

    def note(self, request) -> None:
        url = str(request.url)
        if url.startswith(self.api_url):
            self.counts[f"{request.method} {self.ID.sub('{id}', url[len(self.api_url):].split('?')[0])}"] += 1

    def __enter__(self) -> ApiRequests:
        import httpx

        self.saved = httpx.Client.send, httpx.AsyncClient.send
        sync_send, async_send = self.saved

        def send(client, request, *args, **kwargs):
            self.note(request)
            return sync_send(client, request, *args, **kwargs)

        async def asend(client, request, *args, **kwargs):
            self.note(request)
            return await async_send(client, request, *args, **kwargs)

        httpx.Client.send, httpx.AsyncClient.send = send, asend
        return self

    def __exit__(self, *exc: object) -> None:
        import httpx

        httpx.Client.send, httpx.AsyncClient.send = self.saved

    def per_run(self, runs: int) -> dict[str, float]:
        """Requests per run: the total first, then each endpoint, most frequent first."""
        table = {k: round(v / runs, 2) for k, v in self.counts.most_common()}
        return {"total": round(sum(self.counts.values()) / runs, 2), **table}
