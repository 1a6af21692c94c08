"""Airtable backend through the real ``pyairtable`` client.

One Airtable table per state table, created on first write through the
metadata API with the fields ``key`` (primary, single line text), ``version``
(number), ``updated_at`` (single line text); data fields are added as
long-text fields on first use and hold :mod:`aios.state.codec` text.

``pyairtable.Api(token, endpoint_url=AIOS_STATE_AIRTABLE_API_URL,
retry_strategy=None)`` -- the endpoint override is a documented constructor
argument; pyairtable's own urllib3 retries are switched off so that our
tenacity policy (Retry-After aware, bounded, then journal) is the only one.

Writes go in batches of 10 (the API maximum) as
``PUT .../{table}`` with ``performUpsert: {"fieldsToMergeOn": ["key"]}`` and
``typecast: true``; lookups use ``filterByFormula`` on ``{key}``.
Requests per operation: get 1, upsert 2, upsert_many(n) ceil(n/100) + ceil(n/10), delete 2.

Duplicate records of one key (two writers creating the same key at once) are
resolved on read by :func:`~aios.state.remote.pick_winner` and deleted by the next
write of that key. Requests are paced per base (``AIOS_STATE_AIRTABLE_REQUESTS_PER_SECOND``,
default 5) and per token (50/s), see :mod:`aios.state.pacing`: a breach of Airtable's
limit costs 30 seconds of 429s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr
from pyairtable import Api
from pyairtable.formulas import EQ, OR, Field

from aios.core.retry_after import parse_retry_after

from . import codec
from .base import BackendUnavailable, Record, StateError, parse_time
from .config import StateSettings
from .pacing import Pacer, RateLimit, mount_pacing
from .remote import Current, PartialWrite, RemoteStore, Write, pick_winner, transport_error
from .retry import RetryPolicy, transient_status

AIRTABLE_API = "https://api.airtable.com"
META_FIELDS = [
    {"name": "key", "type": "singleLineText"},
    {"name": "version", "type": "number", "options": {"precision": 0}},
    {"name": "updated_at", "type": "singleLineText"},
]
META = ("key", "version", "updated_at")
BATCH = 10
FORMULA_KEYS = 100  # keys per OR() lookup (pyairtable moves a too-long URL into a POST body)


class AirtableStore(RemoteStore):
    backend = "airtable"

    def __init__(
        self,
        base_id: str,
        token: SecretStr | str,
        *,
        api_url: str | None = None,
        policy: RetryPolicy | None = None,
        lock_dir: Path,
        timeout: float = 30.0,
        per_base: RateLimit = RateLimit(5, 1.0),
        per_token: RateLimit = RateLimit(50, 1.0),
        pacing_dir: Path | None = None,
    ) -> None:
        self.base_id = base_id
        self.identity = f"airtable:{base_id}"
        self.where = f"airtable base {base_id}"
        super().__init__(policy or RetryPolicy(), lock_dir)
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        self._api = Api(
            secret,
            endpoint_url=(api_url or AIRTABLE_API).rstrip("/"),
            timeout=(min(10.0, timeout), timeout),
            retry_strategy=None,
        )
        self._base = self._api.base(base_id)
        self.session = self._api.session
        if pacing_dir is not None:
            token_id = hashlib.sha256(secret.encode()).hexdigest()[:16]  # never the token itself
            pacers = [Pacer(f"airtable-token:{token_id}", per_token, pacing_dir), Pacer(self.identity, per_base, pacing_dir)]
            mount_pacing(self.session, lambda req: pacers)
        self._schema: dict[str, dict[str, Any]] | None = None

    @classmethod
    def from_settings(cls, settings: StateSettings) -> AirtableStore:
        if not settings.airtable_base_id:
            raise StateError("state settings: the airtable backend needs AIOS_STATE_AIRTABLE_BASE_ID")
        if settings.airtable_token is None or not settings.airtable_token.get_secret_value():
            raise StateError("state settings: the airtable backend needs AIRTABLE_API_KEY (or AIOS_STATE_AIRTABLE_TOKEN)")
        return cls(
            settings.airtable_base_id,
            settings.airtable_token,
            api_url=settings.airtable_api_url,
            policy=settings.retry_policy(),
            lock_dir=settings.lock_dir(),
            timeout=settings.http_timeout,
            per_base=RateLimit(settings.airtable_requests_per_second, settings.rate_window_scale),
            per_token=RateLimit(settings.airtable_token_requests_per_second, settings.rate_window_scale),
            pacing_dir=settings.pacing_dir(),
        )

    # -- error mapping ------------------------------------------------------------------
    def _translate(self, exc: BaseException, what: str) -> BaseException:
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            resp = exc.response
            status = resp.status_code
            kind, message = "", ""
            try:
                err = resp.json().get("error")
                if isinstance(err, dict):
                    kind, message = str(err.get("type", "")), str(err.get("message", ""))
                elif isinstance(err, str):
                    kind = err
            except (ValueError, AttributeError):
                pass
            message = " ".join(message.split())[:200]
            if (transient := transient_status(status, resp.headers.get("Retry-After"))) is not None:
                return transient
            if status in (401, 403):
                return StateError(
                    f"{self.where}: {what}: access denied (HTTP {status} {kind}); check AIRTABLE_API_KEY "
                    "and AIOS_STATE_AIRTABLE_BASE_ID"
                )
            detail = ": ".join(x for x in (kind, message) if x)
            return StateError(f"{self.where}: {what}: HTTP {status}" + (f" {detail}" if detail else ""))
        transient = transport_error(exc)
        if transient is not None:
            return transient
        return StateError(f"{self.where}: {what}: unexpected {type(exc).__name__}")

    def _ping(self) -> None:
        self._api.get(self._base.urls.tables)

    # -- schema -------------------------------------------------------------------------
    def _tables(self, refresh: bool = False) -> dict[str, dict[str, Any]]:
        if self._schema is None or refresh:
            data = self.call("read base schema", lambda: self._api.get(self._base.urls.tables))
            self._schema = {
                t["name"]: {"id": t["id"], "fields": {f["name"]: f.get("type") for f in t.get("fields", [])}}
                for t in (data or {}).get("tables", [])
            }
        return self._schema

    def _tbl(self, table: str) -> str:
        return f"{self.where} table {table!r}"

    def _check_table(self, table: str, info: dict[str, Any]) -> None:
        for name in META:
            if name not in info["fields"]:
                raise StateError(
                    f"{self._tbl(table)}: malformed table: no {name!r} field (expected {', '.join(META)}, then data fields)"
                )

    # -- primitives ---------------------------------------------------------------------
    def _fetch(self, table: str, keys: Collection[str] | None) -> dict[str, Current]:
        tables = self._tables()
        if table not in tables:
            tables = self._tables(refresh=True)
            if table not in tables:
                return {}
        info = tables[table]
        self._check_table(table, info)
        api_table = self._api.table(self.base_id, info["id"])
        if keys is None:
            rows = self.call(f"table {table!r}: list records", lambda: api_table.all(page_size=100))
        else:
            keys = sorted(set(keys))
            rows = []
            for i in range(0, len(keys), FORMULA_KEYS):
                formula = OR(*[EQ(Field("key"), k) for k in keys[i : i + FORMULA_KEYS]])
                rows += self.call(
                    f"table {table!r}: look up records", lambda f=formula: api_table.all(formula=f, page_size=100)
                )
        found: dict[str, list[Current]] = {}
        wanted = None if keys is None else set(keys)
        for row in rows:
            fields = row.get("fields", {})
            key = fields.get("key")
            key = "" if key is None else str(key).strip()
            if not key:
                raise StateError(f"{self._tbl(table)}: record {row.get('id')} has no key")
            if wanted is not None and key not in wanted:
                continue
            try:
                version = fields.get("version")
                if isinstance(version, float) and version.is_integer():
                    version = int(version)
                if isinstance(version, str):
                    version = int(version)
                updated = parse_time(fields.get("updated_at"))
                data = {n: codec.decode(v) for n, v in fields.items() if n not in META}
                rec = Record(table=table, key=key, version=version, updated_at=updated, data=data)
            except (ValueError, TypeError) as exc:
                msg = str(exc).splitlines()[0][:120]
                raise StateError(f"{self._tbl(table)}: record {row.get('id')} (key {key!r}) is malformed: {msg}") from None
            found.setdefault(key, []).append(Current(rec, row["id"]))
        return {key: pick_winner(recs) for key, recs in found.items()}

    def _ensure_table(self, table: str, fields: set[str]) -> str:
        tables = self._tables()
        if table not in tables:
            body = {"name": table, "fields": META_FIELDS}
            try:
                self.call(f"table {table!r}: create", lambda: self._api.post(self._base.urls.tables, json=body))
            except BackendUnavailable:
                raise
            except StateError as exc:
                if "DUPLICATE_TABLE_NAME" not in str(exc):
                    raise
            tables = self._tables(refresh=True)
        info = tables[table]
        self._check_table(table, info)
        for name in sorted(fields - set(info["fields"])):
            url = self._api.table(self.base_id, info["id"]).urls.fields
            body = {"name": name, "type": "multilineText"}
            try:
                self.call(f"table {table!r}: add field {name!r}", lambda: self._api.post(url, json=body))
            except BackendUnavailable:
                raise
            except StateError as exc:
                if "DUPLICATE_OR_EMPTY_FIELD_NAME" not in str(exc):
                    raise
            info["fields"][name] = "multilineText"
        return info["id"]

    def _apply(self, table: str, writes: Sequence[Write], current: dict[str, Current]) -> None:
        applied: set[str] = set()
        try:
            self._apply_inner(table, writes, current, applied)
        except PartialWrite:
            raise
        except BackendUnavailable as exc:
            raise PartialWrite(str(exc), applied) from None

    def _apply_inner(self, table: str, writes: Sequence[Write], current: dict[str, Current], applied: set[str]) -> None:
        upserts = [w for w in writes if w.data is not None]
        deletes = [w for w in writes if w.data is None and w.key in current]
        if upserts:
            names = {n for w in upserts for n in (w.data or {})}
            table_id = self._ensure_table(table, names)
        elif deletes:
            table_id = self._tables()[table]["id"]
        else:
            return
        api_table = self._api.table(self.base_id, table_id)
        # losing duplicates first: an upsert merging on a key that matches two records fails
        extra = [h for w in writes if w.key in current for h in current[w.key].extra]
        for i in range(0, len(extra), BATCH):
            self._delete_ids(table, api_table, extra[i : i + BATCH])
        for w in writes:
            if w.key in current:
                current[w.key].extra = []
        for i in range(0, len(upserts), BATCH):
            chunk = upserts[i : i + BATCH]
            records = [
                {
                    "fields": {
                        "key": w.key,
                        "version": w.version,
                        "updated_at": w.updated_at.isoformat(),
                        **{n: codec.encode(v) for n, v in (w.data or {}).items()},
                    }
                }
                for w in chunk
            ]
            resp = self.call(
                f"table {table!r}: upsert records",
                lambda: api_table.batch_upsert(records, key_fields=["key"], replace=True, typecast=True),
            )
            by_key = {r["fields"].get("key"): r["id"] for r in resp.get("records", [])}
            for w in chunk:
                rec = Record(table=table, key=w.key, version=w.version, updated_at=w.updated_at, data=w.data or {})
                current[w.key] = Current(rec, by_key.get(w.key))
                applied.add(w.key)
        for i in range(0, len(deletes), BATCH):
            chunk = deletes[i : i + BATCH]
            self._delete_ids(table, api_table, [current[w.key].handle for w in chunk])
            for w in chunk:
                current.pop(w.key, None)
                applied.add(w.key)

    def _delete_ids(self, table: str, api_table: Any, ids: list[str]) -> None:
        """Delete records by id; ids already gone (a retry after a lost answer) are fine."""
        try:
            self.call(f"table {table!r}: delete records", lambda: api_table.batch_delete(ids))
        except BackendUnavailable:
            raise
        except StateError as exc:
            if "HTTP 404" not in str(exc):
                raise
            for rid in ids:  # one by one: delete what is left
                try:
                    self.call(f"table {table!r}: delete record", lambda r=rid: api_table.delete(r))
                except BackendUnavailable:
                    raise
                except StateError as one:
                    if "HTTP 404" not in str(one):
                        raise
