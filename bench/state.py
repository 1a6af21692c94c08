"""State backend benchmark (a script, not a test).

    python bench/state.py [--records 100] [--rounds 5]

Starts the Sheets and Airtable emulators on free loopback ports, then for each
backend (json, sheets, airtable) measures:

* one-by-one: ``upsert()`` per record -- records/s and HTTP requests per 100 upserts;
* batched: ``upsert_many()`` of ``--records`` records -- records/s and requests per 100;
* paced: 100 ``upsert()`` calls with client-side pacing at the published limits
  (Airtable 5/s per base, Sheets 60 reads + 60 writes per minute) against an emulator
  that enforces them, both with windows multiplied by ``--window-scale``: records/s
  and how many 429s the emulator had to send (should be 0).

The throughput figures above are measured with pacing off (limits 0), so they show
the client and emulator, not the published quotas.

"One request per record" (100 requests per 100 upserts) is the reference the
batched path must beat by at least 5x; the script prints both figures and the
ratio and exits 1 if any remote backend misses it.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aios.state import StateSettings, open_store  # noqa: E402

TOKEN = "bench-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(module: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--token", TOKEN],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/_control/faults", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{module} did not start") from None
            time.sleep(0.05)


def _count(url: str | None) -> int:
    return httpx.get(f"{url}/_control/requests", timeout=5).json()["count"] if url else 0


def _settings(backend: str, workdir: Path, urls: dict[str, str]) -> StateSettings:
    common = dict(
        path=workdir / "aios.json",
        journal_path=workdir / "journal.jsonl",
        retry_attempts=3,
        airtable_requests_per_second=0,
        airtable_token_requests_per_second=0,
        sheets_reads_per_minute=0,
        sheets_writes_per_minute=0,
    )
    if backend == "sheets":
        sid = "bench" + uuid.uuid4().hex[:10]
        httpx.put(f"{urls['sheets']}/_control/spreadsheets/{sid}", json={"title": "bench"}, timeout=5)
        return StateSettings(backend="sheets", sheets_spreadsheet=sid, sheets_token=TOKEN, sheets_api_url=urls["sheets"], **common)
    if backend == "airtable":
        bid = "app" + uuid.uuid4().hex[:14]
        httpx.put(f"{urls['airtable']}/_control/bases/{bid}", json={}, timeout=5)
        return StateSettings(backend="airtable", airtable_base_id=bid, airtable_token=TOKEN, airtable_api_url=urls["airtable"], **common)
    return StateSettings(backend="json", **common)


def bench(backend: str, workdir: Path, urls: dict[str, str], n: int, rounds: int) -> dict[str, float]:
    url = urls.get(backend)
    store = open_store(backend, settings=_settings(backend, workdir, urls))
    store.upsert("warmup", "w", {"x": 1})  # metadata, first table, fields
    store.upsert_many("single", [("seed", {"i": 0, "name": "seed", "tags": ["a"]})])
    store.upsert_many("batched", [("seed", {"i": 0, "name": "seed", "tags": ["a"]})])

    before, t0 = _count(url), time.perf_counter()
    for r in range(rounds):
        for i in range(n):
            store.upsert("single", f"r{r}-{i}", {"i": i, "name": f"record {i}", "tags": ["a", "b"]})
    single_s, single_req = time.perf_counter() - t0, _count(url) - before

    before, t0 = _count(url), time.perf_counter()
    for r in range(rounds):
        store.upsert_many("batched", [(f"r{r}-{i}", {"i": i, "name": f"record {i}", "tags": ["a", "b"]}) for i in range(n)])
    batch_s, batch_req = time.perf_counter() - t0, _count(url) - before

    before, t0 = _count(url), time.perf_counter()
    for r in range(rounds):  # updates of existing records
        store.upsert_many("batched", [(f"r{r}-{i}", {"i": -i, "name": "updated"}) for i in range(n)])
    update_s, update_req = time.perf_counter() - t0, _count(url) - before
    store.close()
    total = n * rounds
    return {
        "single_rps": total / single_s,
        "single_req100": single_req * 100 / total,
        "batch_rps": total / batch_s,
        "batch_req100": batch_req * 100 / total,
        "update_rps": total / update_s,
        "update_req100": update_req * 100 / total,
    }


def paced(backend: str, workdir: Path, urls: dict[str, str], scale: float, n: int = 100) -> dict[str, float]:
    url = urls[backend]
    published = dict(
        airtable_requests_per_second=5, airtable_token_requests_per_second=50,
        sheets_reads_per_minute=60, sheets_writes_per_minute=60,
    )
    settings = _settings(backend, workdir, urls).model_copy(update={**published, "rate_window_scale": scale})
    store = open_store(backend, settings=settings)
    store.upsert("paced", "warmup", {"i": 0})
    httpx.put(f"{url}/_control/limits", json={"enabled": True, "scale": scale}, timeout=5)
    try:
        t0 = time.perf_counter()
        for i in range(n):
            store.upsert("paced", f"k{i}", {"i": i})
        elapsed = time.perf_counter() - t0
        rejected = httpx.get(f"{url}/_control/limits", timeout=5).json()["rejected"]
    finally:
        httpx.delete(f"{url}/_control/limits", timeout=5)
    store.close()
    return {"rps": n / elapsed, "rejected": rejected, "journaled": len(store.pending())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100, help="records per batch / per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--backends", default="json,sheets,airtable")
    p.add_argument("--window-scale", type=float, default=0.1, help="rate-limit windows x this (paced run)")
    a = p.parse_args()
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    procs, urls = [], {}
    try:
        for name, module in (("sheets", "aios.emulators.sheets"), ("airtable", "aios.emulators.airtable")):
            if name in backends:
                proc, url = _start(module)
                procs.append(proc)
                urls[name] = url
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for b in backends:
                (Path(tmp) / b).mkdir()
                results[b] = bench(b, Path(tmp) / b, urls, a.records, a.rounds)
            pacing = {}
            for b in backends:
                if b != "json":
                    (Path(tmp) / f"{b}-paced").mkdir()
                    pacing[b] = paced(b, Path(tmp) / f"{b}-paced", urls, a.window_scale)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)

    print(f"state backends, {a.rounds} x {a.records} records (emulators on loopback; 'req/100' = HTTP requests per 100 upserts)")
    print(f"{'backend':<9} {'one-by-one rec/s':>17} {'req/100':>8} {'batched rec/s':>14} {'req/100':>8} "
          f"{'batch-update rec/s':>19} {'req/100':>8} {'vs 1 req/record':>16}")
    ok = True
    for b, r in results.items():
        if b == "json":
            ratio = "n/a (no HTTP)"
        else:
            x = 100 / r["batch_req100"] if r["batch_req100"] else float("inf")
            ratio = f"{x:.1f}x fewer"
            ok &= x >= 5 and 100 / r["update_req100"] >= 5
        print(f"{b:<9} {r['single_rps']:>17.0f} {r['single_req100']:>8.1f} {r['batch_rps']:>14.0f} {r['batch_req100']:>8.1f} "
              f"{r['update_rps']:>19.0f} {r['update_req100']:>8.1f} {ratio:>16}")
    print("reference: one request per record = 100.0 req/100; batching must be >= 5x fewer:", "OK" if ok else "FAILED")
    print(f"paced: 100 upsert() at the published limits, windows x {a.window_scale} on client and emulator")
    for b, r in pacing.items():
        print(f"{b:<9} {r['rps']:>8.1f} rec/s   429s from the emulator: {r['rejected']}   journaled: {r['journaled']}")
        ok &= r["rejected"] == 0 and r["journaled"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
