"""Write journal for remote backends: writes survive a backend outage.

When Sheets/Airtable stays down past the retry bound, :class:`JournaledStore`
appends the write to ``state/journal.jsonl`` (JSON lines, fsynced; path
``AIOS_STATE_JOURNAL_PATH``) and returns the record it *will* become. The
journal is replayed in order -- automatically before the next operation once
the backend answers again (at most every ``AIOS_STATE_PROBE_INTERVAL``
seconds while it is down), or by hand with :func:`sync` / ``aios state sync``.

Replay is idempotent by key and version: each entry carries the ``version``
and ``updated_at`` the record gets when the entry is applied; an entry whose
write is already in the backend (same key, version and ``updated_at`` -- e.g.
a crash between writing and trimming the journal) is skipped, so nothing is
applied twice. An entry written with ``expected_version`` that no longer
matches (someone else wrote meanwhile) is not applied: it moves to
``journal.conflicts.jsonl`` and shows in ``aios state status``.

Read-your-writes: while entries are pending, ``get``/``list`` on the same
store overlay them on what the backend returns (``get`` of a key with a
pending entry answers from the journal without a round trip), so a skill sees
its own writes during an outage. The versions of records returned for
journaled writes are provisional when the backend's current version was not
known at the time; replay assigns the real ones.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from aios.files import atomic_write_text

from . import open_store
from .base import (
    BackendUnavailable,
    Record,
    StateError,
    Store,
    check_version,
    matches,
    utcnow,
    validate_key,
    validate_table,
)
from .config import StateSettings
from .remote import Current, PartialWrite, WritePlan, RemoteStore, Req, Write

log = logging.getLogger("aios.state")
T = TypeVar("T")


class JournalEntry(BaseModel):
    """One queued write. Strict: a line with unknown fields, or an upsert without data, is not ours
    to rewrite or apply (an edited ``"dta"`` would otherwise replay as an empty record)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    store: str  # RemoteStore.identity, e.g. "sheets:<id>" / "airtable:<base>"
    table: str
    key: str
    op: Literal["upsert", "delete"]
    data: dict[str, Any] | None = None
    expected_version: int | None = None
    version: int  # the version the record gets (provisional if the base was unknown)
    updated_at: datetime
    journaled_at: datetime
    reason: str | None = None  # set on conflict entries

    @model_validator(mode="after")
    def _data_matches_op(self) -> JournalEntry:
        if (self.op == "upsert") != (self.data is not None):
            raise ValueError("an upsert carries data, a delete does not")
        return self

    @property
    def backend(self) -> str:
        return self.store.split(":", 1)[0]


class Journal:
    """An append-only JSON-lines file guarded by a ``FileLock`` (always the innermost lock).

    Nothing in it is ever thrown away unread: every line that parses is an
    entry, even the last one without a final newline (editors often drop it).
    An unterminated last line that does *not* parse is a write torn by a crash;
    the next write moves it to ``<journal>.quarantine`` (never deletes it). A
    complete line that does not parse stops every operation with one line
    naming it, and the file is left as it is.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.conflicts_path = self.path.with_name(self.path.stem + ".conflicts.jsonl")
        self._lock = FileLock(str(self.path) + ".lock", timeout=120)
        self._tlock = threading.RLock()
        self.notices: list[str] = []  # one line per torn line moved to a quarantine file

    @staticmethod
    def quarantine_path(path: Path) -> Path:
        return path.with_name(path.name + ".quarantine")

    def _locked(self):  # noqa: ANN202
        return _Both(self._tlock, self._lock)

    def has_entries(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def _parse(self, path: Path) -> tuple[list[JournalEntry], bytes]:
        """The entries in ``path`` and its torn tail (an unterminated last line that does not parse)."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return [], b""
        except OSError as exc:
            raise StateError(f"{path}: cannot read journal: {exc.strerror or exc}") from None
        lines = raw.split(b"\n")
        last = lines.pop()  # b"" when the file ends with a newline
        out = []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            entry = _entry_or_none(line)
            if entry is None:
                raise StateError(f"{path}: line {n} is corrupt; fix or remove that line") from None
            out.append(entry)
        tail = b""
        if last.strip():
            entry = _entry_or_none(last)
            if entry is None:
                tail = last
            else:
                out.append(entry)
        return out, tail

    def _read(self, path: Path) -> list[JournalEntry]:
        return self._parse(path)[0]

    def torn_tail(self) -> bool:
        """True if the journal ends in a line torn by a crash (moved to quarantine on the next write)."""
        with self._locked():
            return bool(self._parse(self.path)[1])

    def _quarantine(self, path: Path, tail: bytes) -> None:
        """Append ``tail`` to the quarantine file beside ``path`` (fsynced) before it leaves ``path``."""
        target = self.quarantine_path(path)
        with open(target, "ab") as fh:
            fh.write(tail + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        notice = f"{path}: the last line did not parse (a write torn by a crash?); moved it to {target}"
        log.warning("%s", notice)
        self.notices.append(notice)

    def set_aside_torn_tail(self) -> None:
        """Move a torn last line to the quarantine file now (``aios state sync`` does this first)."""
        if not self.has_entries():
            return
        with self._locked():
            _, tail = self._parse(self.path)  # a corrupt complete line stops us before any change
            if not tail:
                return
            try:
                self._quarantine(self.path, tail)
                with open(self.path, "r+b") as fh:
                    fh.truncate(self.path.stat().st_size - len(tail))
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise StateError(f"{self.path}: cannot write journal: {exc.strerror or exc}") from None

    def _append(self, path: Path, entries: Sequence[JournalEntry]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":  # an unterminated last line: end it, or set it aside if torn
                    fh.seek(0)
                    body = fh.read()
                    start = body.rfind(b"\n") + 1
                    last = body[start:]
                    if last.strip() and _entry_or_none(last) is None:
                        self._quarantine(path, last)
                        fh.truncate(start)
                    else:
                        fh.write(b"\n")
                    fh.seek(0, os.SEEK_END)
            fh.write(b"".join(e.model_dump_json().encode() + b"\n" for e in entries))
            fh.flush()
            os.fsync(fh.fileno())

    def entries(self, store: str | None = None) -> list[JournalEntry]:
        if not self.has_entries():
            return []
        with self._locked():
            items = self._read(self.path)
        return [e for e in items if store is None or e.store == store]

    def append(self, entries: Sequence[JournalEntry]) -> None:
        if not entries:
            return
        with self._locked():
            try:
                self._append(self.path, entries)
            except OSError as exc:
                raise StateError(f"{self.path}: cannot write journal: {exc.strerror or exc}") from None

    def remove(self, ids: set[str]) -> None:
        self.rewrite(ids, {})

    def rewrite(self, remove: set[str], update: dict[str, JournalEntry]) -> None:
        """Atomically drop ``remove`` ids and replace entries by id with ``update``."""
        if not remove and not update:
            return
        with self._locked():
            entries, tail = self._parse(self.path)
            keep = [update.get(e.id, e) for e in entries if e.id not in remove]
            text = "".join(e.model_dump_json() + "\n" for e in keep)
            try:
                if tail:
                    self._quarantine(self.path, tail)
                atomic_write_text(self.path, text)
            except OSError as exc:
                raise StateError(f"{self.path}: cannot write journal: {exc.strerror or exc}") from None

    def add_conflicts(self, entries: Sequence[JournalEntry]) -> None:
        if entries:
            with self._locked():
                try:
                    self._append(self.conflicts_path, entries)
                except OSError as exc:
                    raise StateError(f"{self.conflicts_path}: cannot write: {exc.strerror or exc}") from None

    def conflicts(self) -> list[JournalEntry]:
        with self._locked():
            return self._read(self.conflicts_path)


def _entry_or_none(line: bytes) -> JournalEntry | None:
    try:
        return JournalEntry.model_validate_json(line)
    except ValidationError:
        return None


class _Both:
    def __init__(self, tlock: threading.RLock, flock: FileLock) -> None:
        self.t, self.f = tlock, flock

    def __enter__(self) -> None:
        self.t.acquire()
        try:
            self.f.acquire()
        except BaseException:
            self.t.release()
            raise

    def __exit__(self, *exc: object) -> None:
        self.f.release()
        self.t.release()


@dataclass
class SyncReport:
    applied: int = 0
    skipped: int = 0  # already applied (idempotent replay)
    conflicts: list[str] = field(default_factory=list)
    remaining: int = 0
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # torn lines moved to a quarantine file

    def merge(self, other: SyncReport) -> None:
        self.applied += other.applied
        self.skipped += other.skipped
        self.conflicts += other.conflicts
        self.remaining += other.remaining
        self.errors += other.errors
        self.notices += other.notices


def replay(store: RemoteStore, journal: Journal) -> SyncReport:
    """Apply the journal's entries for ``store`` in order. Raises BackendUnavailable if it is still down.

    The journal is trimmed batch by batch, so a crash leaves at most one batch
    whose fate is unknown; on the next replay each of its entries is checked
    against the backend (same key, ``updated_at`` and data = already applied).
    Entries that were skipped or set aside are trimmed *before* the next batch
    is written, so an older entry can never be re-applied over a newer one.
    """
    report = SyncReport()
    with store.lock():
        entries = journal.entries(store.identity)
        i = 0
        try:
            while i < len(entries):
                j = i
                while j < len(entries) and entries[j].table == entries[i].table:
                    j += 1
                _replay_run(store, journal, entries[i:j], report)
                i = j
        finally:
            report.remaining = len(journal.entries(store.identity))
    return report


def _replay_run(store: RemoteStore, journal: Journal, run: list[JournalEntry], report: SyncReport) -> None:
    table = run[0].table
    current: dict[str, Current] = store._fetch(table, sorted({e.key for e in run}))
    batch: list[tuple[JournalEntry, Write]] = []
    settled: set[str] = set()  # skipped / conflicting entries not yet trimmed
    set_aside: list[JournalEntry] = []

    def trim_settled() -> None:
        if set_aside:
            journal.add_conflicts(set_aside)
            set_aside.clear()
        journal.rewrite(settled, {})
        settled.clear()

    def flush(start: int) -> None:
        trim_settled()
        if not batch:
            return
        try:
            store._apply(table, [w for _, w in batch], current)
        except PartialWrite as exc:
            ok = {e.id for e, w in batch if w.key in exc.applied}
            journal.rewrite(ok, {})
            report.applied += len(ok)
            raise
        # later conditional entries were written against the provisional version: re-point them
        updates: dict[str, JournalEntry] = {}
        for e, w in batch:
            if w.version == e.version:
                continue
            for m in range(start, len(run)):
                f = run[m]
                if f.key == e.key and f.expected_version == e.version:
                    run[m] = f.model_copy(update={"expected_version": w.version})
                    updates[f.id] = run[m]
        journal.rewrite({e.id for e, _ in batch}, updates)
        report.applied += len(batch)
        batch.clear()

    for n in range(len(run)):
        e = run[n]
        if any(w.key == e.key for _, w in batch):
            flush(n)
            e = run[n]
        cur = current.get(e.key)
        rec = cur.record if cur else None
        # idempotency: this very write (key + version stamp + data) is already there
        if e.op == "upsert" and rec is not None and rec.updated_at == e.updated_at and rec.data == (e.data or {}):
            settled.add(e.id)
            report.skipped += 1
            continue
        actual = rec.version if rec else 0
        if e.expected_version is not None and e.expected_version != actual:
            reason = f"expected version {e.expected_version}, found {actual or 'no record'}"
            set_aside.append(e.model_copy(update={"reason": reason}))
            settled.add(e.id)
            report.conflicts.append(f"{e.table}/{e.key}: {reason}")
            continue
        if e.op == "delete":
            if rec is None:
                settled.add(e.id)
                report.skipped += 1
                continue
            batch.append((e, Write(e.key, None, actual + 1, e.updated_at)))
        else:
            batch.append((e, Write(e.key, e.data or {}, actual + 1, e.updated_at)))
    flush(len(run))


class JournaledStore(Store):
    """A remote store plus the journal: outages turn into queued writes, not failures."""

    def __init__(self, inner: RemoteStore, settings: StateSettings | None = None, *, journal: Journal | None = None) -> None:
        settings = settings or StateSettings()
        self.inner = inner
        self.backend = inner.backend
        self.journal = journal or Journal(settings.journal_file())
        self.probe_interval = settings.probe_interval
        self._down_until = 0.0
        self._seen: dict[tuple[str, str], int] = {}

    @property
    def where(self) -> str:  # type: ignore[override]
        return self.inner.where

    @property
    def identity(self) -> str:
        return self.inner.identity

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"<JournaledStore {self.inner.where}>"

    # -- journal plumbing ---------------------------------------------------------------
    def pending(self) -> list[JournalEntry]:
        return self.journal.entries(self.identity)

    def sync(self) -> SyncReport:
        """Replay now (ignores the probe interval). Raises BackendUnavailable if still down."""
        try:
            report = replay(self.inner, self.journal)
        except BackendUnavailable:
            self._mark_down()
            raise
        self._down_until = 0.0
        if report.applied or report.skipped or report.conflicts:
            log.info(
                "%s: journal replayed: %d applied, %d already applied, %d conflict(s), %d pending",
                self.where,
                report.applied,
                report.skipped,
                len(report.conflicts),
                report.remaining,
            )
        return report

    def _mark_down(self) -> None:
        self._down_until = time.monotonic() + self.probe_interval

    def _caught_up(self) -> bool:
        """True when nothing is pending for this store (replaying first if it is time to)."""
        if not self.journal.has_entries() or not self.pending():
            return True
        if time.monotonic() < self._down_until:
            return False
        if self._down_until and not self.inner.probe():  # known down: one cheap request, no retries
            self._mark_down()
            return False
        try:
            self.sync()
        except BackendUnavailable:
            return False
        return not self.pending()

    def _note(self, rec: Record | None) -> Record | None:
        if rec is not None:
            self._seen[(rec.table, rec.key)] = rec.version
        return rec

    def _overlay(self, table: str, records: dict[str, Record], keys: set[str] | None = None) -> dict[str, Record]:
        for e in self.pending():
            if e.table != table or (keys is not None and e.key not in keys):
                continue
            if e.op == "delete":
                records.pop(e.key, None)
            else:
                records[e.key] = Record(table=table, key=e.key, version=e.version, updated_at=e.updated_at, data=e.data or {})
        return records

    def _predict(self, table: str, key: str, expected: int | None, pending: list[JournalEntry]) -> int:
        for e in reversed(pending):
            if e.table == table and e.key == key:
                return 1 if e.op == "delete" else e.version + 1
        if expected is not None:
            return expected + 1
        return self._seen.get((table, key), 0) + 1

    def _journal(self, table: str, reqs: Sequence[Req], now: datetime, plan: WritePlan | None, applied: set[str]) -> list[Record | bool]:
        """Queue the not-yet-applied part of ``reqs``; return what the caller would have got."""
        pending = self.pending()
        new: list[JournalEntry] = []
        results: list[Record | bool] = []
        if plan is not None:
            # the fetch worked: versions are known exactly; journal the final write per key
            for w in plan.writes:
                if w.key in applied:
                    continue
                req = next(r for r in reversed(reqs) if r.key == w.key)
                new.append(self._entry(table, w.key, w.data, req.expected_version, w.version, now))
            results = plan.results
        else:
            view: dict[str, int] = {}
            for req in reqs:
                version = view.get(req.key) or self._predict(table, req.key, req.expected_version, pending + new)
                e = self._entry(table, req.key, req.data, req.expected_version, version, now)
                new.append(e)
                view[req.key] = 1 if req.data is None else version + 1
                if req.data is None:
                    results.append(True)
                else:
                    results.append(Record(table=table, key=req.key, version=version, updated_at=now, data=req.data))
        self.journal.append(new)
        log.warning(
            "%s: backend unavailable; %d write(s) journaled to %s (replayed when it answers again)",
            self.where,
            len(new),
            self.journal.path,
        )
        for r in results:
            if isinstance(r, Record):
                self._note(r)
        return results

    def _entry(self, table: str, key: str, data: dict[str, Any] | None, expected: int | None, version: int, now: datetime) -> JournalEntry:
        return JournalEntry(
            id=uuid.uuid4().hex,
            store=self.identity,
            table=table,
            key=key,
            op="delete" if data is None else "upsert",
            data=data,
            expected_version=expected,
            version=version,
            updated_at=now,
            journaled_at=utcnow(),
        )

    def _write(self, table: str, reqs: Sequence[Req]) -> list[Record | bool]:
        now = utcnow()
        with self.inner.lock():
            if self._caught_up():
                try:
                    out = self.inner.execute(table, reqs, now)
                except PartialWrite as exc:
                    self._mark_down()
                    return self._journal(table, reqs, now, exc.plan, exc.applied)
                except BackendUnavailable:
                    self._mark_down()
                    return self._journal(table, reqs, now, None, set())
                for r in out:
                    if isinstance(r, Record):
                        self._note(r)
                return out
            # still down (or replay pending): keep order by journaling behind the queue
            if any(r.expected_version is not None for r in reqs):
                # check what we can against the queued state to fail fast on obvious conflicts
                overlay = self._overlay(table, {}, {r.key for r in reqs})
                for r in reqs:
                    if r.key in overlay:
                        check_version(self.where, table, r.key, r.expected_version, overlay[r.key].version)
            return self._journal(table, reqs, now, None, set())

    # -- Store API ----------------------------------------------------------------------
    def _read(self, fn: Callable[[], T]) -> T:
        """A read from the backend; while it is known to be down, one probe instead of the retry budget."""
        if time.monotonic() < self._down_until or self._down_until:
            if not self.inner.probe():
                self._mark_down()
                raise BackendUnavailable(
                    f"{self.where}: backend unavailable (writes are being journaled; see 'aios state status')"
                )
            if not self.journal.has_entries() or not self.pending():
                self._down_until = 0.0
        try:
            return fn()
        except BackendUnavailable:
            self._mark_down()
            raise

    def get(self, table: str, key: str) -> Record | None:
        validate_table(self.where, table)
        validate_key(self.where, table, key)
        if not self._caught_up():
            queued = [e for e in self.pending() if e.table == table and e.key == key]
            if queued:
                return self._overlay(table, {}, {key}).get(key)
        return self._note(self._read(lambda: self.inner.get(table, key)))

    def list(self, table: str, where: dict[str, Any] | None = None) -> list[Record]:
        validate_table(self.where, table)
        if self._caught_up():
            return [r for r in self._read(lambda: self.inner.list(table, where)) if self._note(r)]
        records = {r.key: r for r in self._read(lambda: self.inner.list(table))}
        records = self._overlay(table, records)
        return [r for r in records.values() if matches(r.data, where)]

    def upsert(self, table: str, key: str, data: dict, *, expected_version: int | None = None) -> Record:
        reqs = self.inner.prepare_upserts(table, [(key, data)], expected_version)
        out = self._write(table, reqs)
        assert isinstance(out[0], Record)
        return out[0]

    def upsert_many(self, table: str, items: Sequence[tuple[str, dict]]) -> list[Record]:
        reqs = self.inner.prepare_upserts(table, items, None)
        if not reqs:
            return []
        return [r for r in self._write(table, reqs) if isinstance(r, Record)]

    def delete(self, table: str, key: str, *, expected_version: int | None = None) -> bool:
        validate_table(self.where, table)
        validate_key(self.where, table, key)
        deleted = bool(self._write(table, [Req(key, None, expected_version)])[0])
        self._seen.pop((table, key), None)  # a re-created key starts again at version 1
        return deleted


# ---------------------------------------------------------------------------------------
# Module-level API used by the CLI (``aios state sync`` / ``aios state status``)
# ---------------------------------------------------------------------------------------


def _settings(settings: StateSettings | None) -> StateSettings:
    return settings or StateSettings()


def pending(settings: StateSettings | None = None, *, store: str | None = None) -> list[JournalEntry]:
    """Journal entries not yet applied (optionally only those for one store identity)."""
    return Journal(_settings(settings).journal_file()).entries(store)


def conflicts(settings: StateSettings | None = None) -> list[JournalEntry]:
    """Journaled writes that could not be applied because of a version conflict."""
    return Journal(_settings(settings).journal_file()).conflicts()


def notices(settings: StateSettings | None = None) -> list[str]:
    """One line per thing in the journal files that is not an entry: a torn last line, lines set aside."""
    journal = Journal(_settings(settings).journal_file())
    out = []
    if journal.torn_tail():
        out.append(
            f"{journal.path}: the last line is incomplete (a write torn by a crash?); the next write "
            f"moves it to {Journal.quarantine_path(journal.path)}"
        )
    for path in (journal.path, journal.conflicts_path):
        target = Journal.quarantine_path(path)
        try:
            n = sum(1 for line in target.read_bytes().split(b"\n") if line.strip())
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StateError(f"{target}: cannot read: {exc.strerror or exc}") from None
        if n:
            out.append(f"{target}: {n} line(s) that did not parse, set aside (nothing was deleted)")
    return out


def sync(settings: StateSettings | None = None, *, backend: str | None = None) -> SyncReport:
    """Replay every pending entry whose store is the configured sheets/airtable store.

    Entries for another spreadsheet/base than the configured one stay in the
    journal and are reported in ``errors``.
    """
    settings = _settings(settings)
    journal = Journal(settings.journal_file())
    report = SyncReport()
    journal.set_aside_torn_tail()
    entries = journal.entries()
    backends = sorted({e.backend for e in entries if backend is None or e.backend == backend})
    handled: set[str] = set()
    for name in backends:
        try:
            store = open_store(name, settings=settings)
        except StateError as exc:
            report.errors.append(str(exc))
            continue
        if not isinstance(store, JournaledStore):  # pragma: no cover - json never journals
            continue
        store.journal = journal
        handled.add(store.identity)
        try:
            report.merge(store.sync())
        except StateError as exc:
            report.errors.append(str(exc))
            report.remaining += len(store.pending())
        finally:
            store.close()
    for ident in sorted({e.store for e in entries if e.store not in handled and (backend is None or e.backend == backend)}):
        n = sum(1 for e in entries if e.store == ident)
        report.errors.append(f"{journal.path}: {n} pending write(s) for {ident}, which is not the configured store")
        report.remaining += n
    report.notices += journal.notices
    return report
