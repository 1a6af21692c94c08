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
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr
from pyairtable import Api
from pyairtable.formulas import EQ, OR, Field

from . import codec
from .base import BackendUnavailable, Record, StateError, parse_time
from .config import StateSettings
from .remote import Current, PartialWrite, RemoteStore, Write
from .retry import RetryPolicy, TransientError, parse_retry_after

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
        )

    def close(self) -> None:
        try:
            self._api.session.close()
        except Exception:  # pragma: no cover
            pass

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
            if status == 429 or status >= 500:
                return TransientError(f"HTTP {status}", retry_after=parse_retry_after(resp.headers.get("Retry-After")))
            if status in (401, 403):
                return StateError(
                    f"{self.where}: {what}: access denied (HTTP {status} {kind}); check AIRTABLE_API_KEY "
                    "and AIOS_STATE_AIRTABLE_BASE_ID"
                )
            detail = ": ".join(x for x in (kind, message) if x)
            return StateError(f"{self.where}: {what}: HTTP {status}" + (f" {detail}" if detail else ""))
        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return TransientError(type(exc).__name__)
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
        out: dict[str, Current] = {}
        ids: dict[str, str] = {}
        wanted = None if keys is None else set(keys)
        for row in rows:
            fields = row.get("fields", {})
            key = fields.get("key")
            key = "" if key is None else str(key).strip()
            if not key:
                raise StateError(f"{self._tbl(table)}: record {row.get('id')} has no key")
            if key in ids:
                raise StateError(f"{self._tbl(table)}: duplicate key {key!r} (records {ids[key]} and {row.get('id')})")
            ids[key] = row.get("id", "")
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
            out[key] = Current(rec, row["id"])
        return out

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
            ids = [current[w.key].handle for w in chunk]
            try:
                self.call(f"table {table!r}: delete records", lambda: api_table.batch_delete(ids))
            except BackendUnavailable:
                raise
            except StateError as exc:
                if "HTTP 404" not in str(exc):
                    raise
                # a retry after a lost response: some are gone already; delete the rest
                still = self._fetch(table, [w.key for w in chunk])
                rest = [still[w.key].handle for w in chunk if w.key in still]
                if rest:
                    self.call(f"table {table!r}: delete records", lambda: api_table.batch_delete(rest))
            for w in chunk:
                current.pop(w.key, None)
                applied.add(w.key)
