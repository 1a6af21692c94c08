"""The soak's auditor: what happened, read only from the Prefect API, the state stores, the emulators'
request logs and the alert/span sinks -- never from the driver's own bookkeeping.

The one thing it is told is which runs were meant to exist: `soak_id`s `s<seed>-00000` .. `-<runs-1>`
(a function of the seed and the run count, not a list the driver kept).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TERMINAL = ("completed", "deferred-then-completed", "dropped-with-record", "failed-with-record")


def soak_ids(seed: int, runs: int) -> list[str]:
    return [f"s{seed}-{i:05d}" for i in range(runs)]


# The input of each skill that carries a run's soak id: a skill's inputs are checked against its declared
# ones (the API refuses an unknown name), so the id rides in one the skill already has.
SOAK_FIELD = {"research-lead": "company", "weekly-report": "week", "daily-news": "date"}
_SOAK_ID = re.compile(r"s\d+-\d{5}")


def soak_inputs(skill: str, sid: str) -> dict[str, Any]:
    return {SOAK_FIELD[skill]: sid}


def soak_id_of(inputs: dict[str, Any] | None) -> str | None:
    """The soak id in a run's inputs (flow-run parameters or a run record), or None for a run not the soak's."""
    for field in SOAK_FIELD.values():
        value = (inputs or {}).get(field)
        if isinstance(value, str) and _SOAK_ID.fullmatch(value):
            return value
    return None


@dataclass
class AlertTally:
    """What the health alerts said: which subjects changed, and whether a change was alerted twice."""

    claude: int = 0  # alerts naming a change of the provider "anthropic"
    models: int = 0  # alerts naming only model-level changes ("openai:gpt-5.4-mini")
    other: int = 0  # alerts naming another provider, not Claude
    repeated: list[str] = field(default_factory=list)  # "subject: old -> new" alerted again with nothing between


_CHANGE_LINE = re.compile(r"^(?P<subject>[\w.:-]+): (?P<old>\w+) -> (?P<new>\w+)")


def tally_alerts(alerts: list[dict[str, Any]]) -> AlertTally:
    """Read the health alerts in the order they arrived (Apprise json:// bodies: title, message).

    One alert per change means a subject's transition is never alerted twice in a row: after
    `anthropic: healthy -> down` the next alert naming anthropic must say something else.
    """
    tally = AlertTally()
    last: dict[str, tuple[str, str]] = {}
    for alert in alerts:
        if "failing over" in alert.get("title", ""):
            continue
        changes = [m for line in str(alert.get("message", "")).splitlines() if (m := _CHANGE_LINE.match(line.strip()))]
        subjects = {m["subject"] for m in changes}
        if "anthropic" in subjects:
            tally.claude += 1
        elif subjects and all(":" in s for s in subjects):
            tally.models += 1
        else:
            tally.other += 1
        for m in changes:
            transition = (m["old"], m["new"])
            if last.get(m["subject"]) == transition:
                tally.repeated.append(f"{m['subject']}: {m['old']} -> {m['new']}")
            last[m["subject"]] = transition
    return tally


@dataclass
class SoakReport:
    submitted: int = 0
    known_to_prefect: int = 0
    outcomes: Counter = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    crashed_unrecorded: list[str] = field(default_factory=list)  # a final Prefect state, no aios record, nobody retries
    lost_states: Counter = field(default_factory=Counter)  # the Prefect state of each lost run's last flow run
    executed_twice: list[str] = field(default_factory=list)
    twice_histories: dict[str, list[str]] = field(default_factory=dict)  # per executed-twice soak id: its runs' state histories
    duplicate_state_records: int = 0
    duplicate_memory_facts: int = 0
    schema_invalid_persisted: int = 0
    paid_calls: int = 0
    paid_calls_by_mode: Counter = field(default_factory=Counter)
    probe_calls: int = 0  # the status check's health probes (paid, but not for any run)
    memory_calls: int = 0  # memory extraction after an answer
    completed_runs: int = 0
    health_alerts: int = 0
    failover_alerts: int = 0
    alert_tally: AlertTally = field(default_factory=AlertTally)
    outages: int = 0
    journal_entries_left: int = 0
    canary_hits: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    through_workers: int = 0
    kills: dict[str, int] = field(default_factory=dict)  # SIGKILLed processes by kind
    restarts: int = 0  # Prefect server restarts
    notes: list[str] = field(default_factory=list)

    @property
    def zero_lines(self) -> dict[str, int]:
        """Every figure that must be 0."""
        return {
            "lost (no terminal record)": len(self.lost),
            "ended by Prefect only (Crashed/Failed, no aios record)": len(self.crashed_unrecorded),
            "executed twice": len(self.executed_twice),
            "duplicate state records": self.duplicate_state_records,
            "duplicate memory facts": self.duplicate_memory_facts,
            "schema-invalid outputs persisted": self.schema_invalid_persisted,
            "journal entries left after recovery": self.journal_entries_left,
            "health alerts repeating a change already alerted": len(self.alert_tally.repeated),
            "canary API keys found in logs, state, artifacts and spans": sum(self.canary_hits.values()),
        }

    def lines(self) -> list[str]:
        out = [
            f"runs submitted                         {self.submitted}  (known to the Prefect API: {self.known_to_prefect})",
        ]
        out += [f"  {name:<37}{self.outcomes.get(name, 0)}" for name in TERMINAL]
        for name, value in self.zero_lines.items():
            out.append(f"{name:<58}{value}")
        if self.lost or self.crashed_unrecorded:
            out.append(f"  unrecorded runs by last Prefect state: {dict(self.lost_states)}; e.g. {(self.lost + self.crashed_unrecorded)[:5]}")
        if self.executed_twice:
            out.append(f"  executed twice, e.g. {self.executed_twice[:5]}")
            for sid, history in self.twice_histories.items():
                out.append(f"  {sid}:")
                out += [f"    {line}" for line in history]
        if self.canary_hits:
            out.append(f"  canary hits by place: {self.canary_hits}")
        per_run = self.paid_calls / self.completed_runs if self.completed_runs else float("nan")
        out.append(f"paid model calls per completed run     {per_run:.2f}  ({self.paid_calls} skill calls answered with 200 / {self.completed_runs} completed; by mode {dict(self.paid_calls_by_mode)}; besides: {self.memory_calls} memory extractions, {self.probe_calls} health probes)")
        per_outage = self.health_alerts / self.outages if self.outages else float("nan")
        tally = self.alert_tally
        claude_per_outage = tally.claude / self.outages if self.outages else float("nan")
        out.append(f"health alerts per outage               {per_outage:.2f}  ({self.health_alerts} for {self.outages} Claude outages)  + {self.failover_alerts} failover alerts")
        out.append(f"  naming Claude's provider health      {claude_per_outage:.2f} per outage  (one per change: down and recovered = 2, a degraded step between = 3); the others name only model-level changes ({tally.models}: the schedule's per-model outages and error rates) or other providers ({tally.other})")
        if tally.repeated:
            out.append(f"  repeated changes: {tally.repeated[:5]}")
        rate = self.submitted / self.wall_seconds if self.wall_seconds else 0.0
        out.append(f"wall time                              {self.wall_seconds:.0f} s  = {rate:.2f} runs/s  ({self.through_workers} runs through process workers, the rest through in-process drainers)")
        out += [f"note: {n}" for n in self.notes]
        return out


    def summary(self) -> dict[str, Any]:
        """The figures as data (`--json`; the soak test asserts on them)."""
        return {
            "submitted": self.submitted,
            "known_to_prefect": self.known_to_prefect,
            "outcomes": {name: self.outcomes.get(name, 0) for name in TERMINAL},
            "zero_lines": self.zero_lines,
            "unrecorded": (self.lost + self.crashed_unrecorded)[:20],
            "unrecorded_states": dict(self.lost_states),
            "executed_twice": self.executed_twice[:20],
            "twice_histories": self.twice_histories,
            "canary_hits": self.canary_hits,
            "paid_calls": self.paid_calls,
            "probe_calls": self.probe_calls,
            "memory_calls": self.memory_calls,
            "completed_runs": self.completed_runs,
            "health_alerts": self.health_alerts,
            "alert_tally": {"claude": self.alert_tally.claude, "models": self.alert_tally.models, "other": self.alert_tally.other},
            "outages": self.outages,
            "kills": self.kills,
            "restarts": self.restarts,
            "wall_seconds": round(self.wall_seconds, 1),
            "notes": self.notes,
        }


class RequestTap:
    """Keeps the LLM emulator's request log (bounded in the emulator) by pulling it now and then."""

    def __init__(self, emulator_url: str) -> None:
        self.url = f"{emulator_url}/_control/requests"
        self.entries: dict[int, dict[str, Any]] = {}

    def pull(self) -> None:
        try:
            for e in httpx.get(self.url, timeout=10).json()["requests"]:
                if e.get("status") is not None or e["seq"] not in self.entries:
                    self.entries[e["seq"]] = e
        except (httpx.HTTPError, ValueError, KeyError):
            pass


async def _all_flow_runs(flow_names: list[str]) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    runs: list = []
    async with get_client() as client:
        while True:
            page = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=flow_names)), sort=FlowRunSort.START_TIME_ASC, limit=200, offset=len(runs)
            )
            runs += page
            if len(page) < 200:
                return runs


async def _state_histories(flow_runs: list, records: list[dict[str, Any]]) -> list[str]:
    """Each flow run of one soak id with its tags and every state it went through (time, type, name,
    message), and the id of each run record: what a double execution is diagnosed from."""
    from prefect.client.orchestration import get_client

    lines = []
    async with get_client() as client:
        for run in sorted(flow_runs, key=lambda r: r.created):
            lines.append(f"flow run {run.id} ({', '.join(t for t in run.tags if ':' in t) or 'no lineage tags'}), pid {run.infrastructure_pid or '-'}")
            for state in await client.read_flow_run_states(run.id):
                lines.append(f"  {state.timestamp:%H:%M:%S.%f} {state.type.value:<9} {state.name:<12} {state.message or ''}"[:300])
    lines += [f"record {r['_backend']}:{r['_key']} status {r.get('status')}" for r in records]
    return lines


def _state_records() -> list[dict[str, Any]]:
    """Every run record in every backend the soak writes to (through the stores, journal overlay included)."""
    from aios.runs.record import RUNS_TABLE
    from aios.state import open_store

    records = []
    for backend in ("json", "sheets", "airtable"):
        for rec in open_store(backend).list(RUNS_TABLE):
            records.append({**rec.data, "_backend": backend, "_key": rec.key})
    return records


def _raw_duplicates(emulator_url: str, spreadsheet: str, base: str) -> int:
    """Rows sharing a key inside the Sheets and Airtable emulators (what a store's list() might hide)."""
    dupes = 0
    book = httpx.get(f"{emulator_url}/sheets/_control/spreadsheets/{spreadsheet}", timeout=30)
    if book.status_code == 200:
        for rows in book.json()["sheets"].values():
            if rows and "key" in rows[0]:
                col = rows[0].index("key")
                keys = Counter(r[col] for r in rows[1:] if len(r) > col and r[col])
                dupes += sum(n - 1 for n in keys.values() if n > 1)
    dump = httpx.get(f"{emulator_url}/airtable/_control/bases/{base}", timeout=30)
    if dump.status_code == 200:
        for table in dump.json()["tables"]:
            keys = Counter(r["fields"].get("key") for r in table["records"] if r["fields"].get("key"))
            dupes += sum(n - 1 for n in keys.values() if n > 1)
    return dupes


def _memory_duplicates(memory_dir: Path) -> int:
    from aios.portability.memory import _read_facts, normalise

    dupes = 0
    for path in memory_dir.glob("*.md"):
        counts = Counter(normalise(f.text) for f in _read_facts(path))
        dupes += sum(n - 1 for n in counts.values() if n > 1)
    return dupes


def _schema_invalid(records: list[dict[str, Any]], skills_dir: Path) -> int:
    import jsonschema

    from aios.skills.loader import load_skills

    schemas = {s.name: s.output_schema for s in load_skills(skills_dir)}
    bad = 0
    for r in records:
        if r.get("output") is not None and schemas.get(r.get("skill")):
            if not jsonschema.Draft202012Validator(schemas[r["skill"]]).is_valid(r["output"]):
                bad += 1
    return bad


async def _canaries(canaries: dict[str, str], workdir: Path, sink_bodies: dict[str, list[bytes]]) -> dict[str, int]:
    """Where any canary key shows up: files under the stack's workdir, Prefect logs/artifacts/states, spans."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    needles = [v.encode() for v in canaries.values()]
    hits: Counter = Counter()
    for path in workdir.rglob("*"):
        if path.is_file() and "prefect" not in path.relative_to(workdir).parts[:1]:
            data = path.read_bytes()
            if any(n in data for n in needles):
                hits[f"file {path.relative_to(workdir)}"] += 1
    async with get_client() as client:
        offset = 0
        while True:
            logs = await client.read_logs(log_filter=LogFilter(), limit=200, offset=offset)
            hits["prefect logs"] += sum(1 for log in logs if any(n.decode() in log.message for n in needles))
            offset += len(logs)
            if len(logs) < 200:
                break
        offset = 0
        while True:
            arts = await client.read_artifacts(limit=200, offset=offset)
            hits["prefect artifacts"] += sum(1 for a in arts if any(n.decode() in json.dumps(a.data, default=str) for n in needles))
            offset += len(arts)
            if len(arts) < 200:
                break
    for place, bodies in sink_bodies.items():
        hits[place] += sum(1 for b in bodies if any(n in b for n in needles))
    return {k: v for k, v in hits.items() if v}


async def audit(
    *,
    seed: int,
    runs: int,
    skills: dict[str, str],
    emulator_url: str,
    spreadsheet: str,
    base: str,
    workdir: Path,
    skills_dir: Path,
    tap: RequestTap,
    alerts: list[dict[str, Any]],
    sink_bodies: dict[str, list[bytes]],
    canaries: dict[str, str],
    outages: int,
) -> SoakReport:
    """`skills` maps each skill to its triage; the rest names where to look."""
    report = SoakReport(submitted=runs, outages=outages)
    wanted = set(soak_ids(seed, runs))

    flow_runs = [r for r in await _all_flow_runs(list(skills)) if soak_id_of(r.parameters.get("inputs")) in wanted]
    by_id: dict[str, list] = defaultdict(list)
    for r in flow_runs:
        by_id[soak_id_of(r.parameters["inputs"])].append(r)
    report.known_to_prefect = len(by_id)
    report.through_workers = sum(1 for r in flow_runs if r.infrastructure_pid)

    records = [r for r in _state_records() if soak_id_of(r.get("inputs")) in wanted]
    recs_by_id: dict[str, list] = defaultdict(list)
    for r in records:
        recs_by_id[soak_id_of(r["inputs"])].append(r)
    report.duplicate_state_records = _raw_duplicates(emulator_url, spreadsheet, base)
    report.duplicate_state_records += sum(n - 1 for n in Counter((r["_backend"], r["_key"]) for r in records).values() if n > 1)

    for sid in sorted(wanted):
        statuses = Counter(r.get("status") for r in recs_by_id.get(sid, []))
        answered = [r for r in by_id.get(sid, []) if r.state and r.state.type.value == "COMPLETED" and r.state.name == "Completed"]
        if statuses["completed"] > 1 or len(answered) > 1:
            report.executed_twice.append(sid)
            report.twice_histories[sid] = await _state_histories(by_id.get(sid, []), recs_by_id.get(sid, []))
        if statuses["completed"]:
            report.outcomes["deferred-then-completed" if statuses["deferred"] else "completed"] += 1
        elif statuses["dropped"]:
            report.outcomes["dropped-with-record"] += 1
        elif statuses["failed"]:
            report.outcomes["failed-with-record"] += 1
        else:
            last = max(by_id.get(sid, []), key=lambda r: r.created, default=None)
            report.lost_states[last.state_name if last else "never created"] += 1
            final = last is not None and last.state is not None and last.state.is_final()
            (report.crashed_unrecorded if final else report.lost).append(sid)
    report.completed_runs = report.outcomes["completed"] + report.outcomes["deferred-then-completed"]

    report.schema_invalid_persisted = _schema_invalid(records, skills_dir)
    report.duplicate_memory_facts = _memory_duplicates(workdir / "memory")
    tap.pull()
    paid = [e for e in tap.entries.values() if e.get("status") == 200 and e["path"].endswith(("/messages", "/completions", "/responses"))]
    from aios.portability.memory import FACTS_SCHEMA
    from flows.status_check import PROBE

    named = {  # by name, or (Anthropic structured outputs) by the schema's property names
        "probe": {PROBE.schema_name, "+".join(sorted(PROBE.output_schema["properties"]))},
        "memory": {"memory_facts", "+".join(sorted(FACTS_SCHEMA["properties"]))},
    }
    kind = lambda e: next((k for k, names in named.items() if e.get("schema") in names), "answer")  # noqa: E731
    kinds = Counter(kind(e) for e in paid)
    answers = [e for e in paid if kind(e) == "answer"]
    report.paid_calls = len(answers)
    report.paid_calls_by_mode = Counter(e["mode"] for e in answers)
    report.probe_calls, report.memory_calls = kinds["probe"], kinds["memory"]
    report.health_alerts = sum(1 for a in alerts if "failing over" not in a.get("title", ""))
    report.failover_alerts = len(alerts) - report.health_alerts
    report.alert_tally = tally_alerts(alerts)
    journal = workdir / "state" / "journal.jsonl"
    report.journal_entries_left = sum(1 for line in journal.read_text().splitlines() if line.strip()) if journal.exists() else 0
    report.canary_hits = await _canaries(canaries, workdir, {**sink_bodies, "alerts": [json.dumps(a).encode() for a in alerts]})
    return report
