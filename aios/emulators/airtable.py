"""Airtable Web API emulator (the subset pyairtable uses), as a standalone Starlette app.

Run alone:  ``python -m aios.emulators.airtable --port 8092 [--token TOKEN ...]``
Mount:      ``Mount("/airtable", app=build_airtable_app())`` (then pass
            ``endpoint_url="http://host:port/airtable"`` to ``pyairtable.Api``).

Implemented: list records (``GET /v0/{base}/{table}`` and ``POST .../listRecords``)
with ``pageSize``/``maxRecords``/``offset`` pagination, ``fields[]`` and a
``filterByFormula`` subset (``{Field}``, string/number literals, ``= != < > <= >=``,
``&``, ``AND OR NOT TRUE FALSE BLANK RECORD_ID LEN LOWER UPPER TRIM``);
get, create (single and up to 10), update (PATCH merge / PUT replace, single
and batch) including ``performUpsert.fieldsToMergeOn``; delete single and
batch (``records[]``); ``typecast``; the metadata API (list tables, create
table, create field). Field types: singleLineText, multilineText, richText,
email, url, phoneNumber, number, percent, currency, checkbox, date, dateTime.

Auth: ``Authorization: Bearer <token>``; accepted tokens are the ones given to
:func:`build_airtable_app` (default ``$AIOS_EMU_AIRTABLE_TOKENS``, comma separated,
else ``emulator-token``). Bases must exist: create them with the control API.

Control endpoints (no auth, not counted, never faulted) -- same as the Sheets emulator:
``PUT/GET/DELETE /_control/faults`` (modes ``rate_limited`` 429 + Retry-After,
``error_500``, ``slow``, ``down`` = 503, ``lost`` = applied then 503, ``cut`` = applied then
half the body and a dropped connection, ``truncated`` = applied then 200 with half the JSON;
``times`` N or null), ``PUT/GET/DELETE /_control/limits`` ``{"enabled": true, "scale": s}``
(5 requests per second per base and 50 per token, windows times ``scale``; a breach answers
429 ``RATE_LIMIT_REACHED`` without Retry-After and blocks the base for 30 s times ``scale``;
``GET`` shows ``rejected``), ``GET/DELETE
/_control/requests``, ``GET/DELETE /_control/log`` (every record create /
update / delete), ``PUT /_control/bases/{base}`` ``{"tables": [{"name", "fields":
[{"name", "type"}], "records": [{...fields}]}]}`` to create or replace a base,
``GET /_control/bases/{base}``, ``DELETE /_control/reset``.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aios.emulators.base import BackendEmulator, bearer_token, serve_backend

# Airtable's published rate limits (requests, window seconds), enforced in "limits" mode; a breach
# blocks the base for AIRTABLE_PENALTY seconds.
AIRTABLE_PER_BASE = (5, 1.0)
AIRTABLE_PER_TOKEN = (50, 1.0)
AIRTABLE_PENALTY = 30.0
MAX_BATCH = 10
TEXT_TYPES = {"singleLineText", "multilineText", "richText", "email", "url", "phoneNumber", "date", "dateTime"}
NUMBER_TYPES = {"number", "percent", "currency"}
FIELD_TYPES = TEXT_TYPES | NUMBER_TYPES | {"checkbox"}


class AirtableError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def airtable_error(status: int, message: str) -> dict[str, Any]:
    if status == 429:
        return {"errors": [{"error": "RATE_LIMIT_REACHED", "message": message}]}
    kind = {500: "SERVER_ERROR", 503: "SERVICE_UNAVAILABLE"}.get(status, "ERROR")
    return {"error": {"type": kind, "message": message}}


def _rid(prefix: str) -> str:
    return prefix + secrets.token_hex(7)[:14]


@dataclass
class FieldDef:
    id: str
    name: str
    type: str
    options: dict[str, Any] | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "type": self.type}
        if self.options:
            out["options"] = self.options
        return out


@dataclass
class Table:
    id: str
    name: str
    fields: list[FieldDef]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "primaryFieldId": self.fields[0].id if self.fields else None,
            "fields": [f.schema() for f in self.fields],
            "views": [{"id": "viw" + self.id[3:], "name": "Grid view", "type": "grid"}],
        }

    def field(self, name: str) -> FieldDef | None:
        for f in self.fields:
            if f.name == name or f.id == name:
                return f
        return None


@dataclass
class Base:
    id: str
    tables: list[Table] = field(default_factory=list)

    def table(self, name_or_id: str) -> Table:
        for t in self.tables:
            if t.id == name_or_id or t.name == name_or_id:
                return t
        raise AirtableError(404, "TABLE_NOT_FOUND", f"Could not find table {name_or_id} in application {self.id}")


# ---------------------------------------------------------------------------------------
# filterByFormula subset
# ---------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")|(?P<field>\{(?:\\.|[^}\\])*\})"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op><=|>=|!=|=|<|>|&|\(|\)|,))"
)


def _tokenize(text: str) -> list[tuple[str, Any]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise AirtableError(422, "INVALID_FILTER_BY_FORMULA", f"The formula for filtering records is invalid: {text}")
        pos = m.end()
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "str":
            val = re.sub(r"\\(.)", r"\1", val[1:-1])
        elif kind == "field":
            val = re.sub(r"\\(.)", r"\1", val[1:-1])
        elif kind == "num":
            val = float(val) if "." in val else int(val)
        out.append((kind, val))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Formula:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.ast = self._expr()
        if self.i != len(self.toks):
            self._bad()

    def _bad(self) -> None:
        raise AirtableError(422, "INVALID_FILTER_BY_FORMULA", f"The formula for filtering records is invalid: {self.text}")

    def _peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _eat(self, kind: str, val: Any = None) -> Any:
        t = self._peek()
        if t is None or t[0] != kind or (val is not None and t[1] != val):
            self._bad()
        self.i += 1
        return t[1]

    def _expr(self) -> Any:
        left = self._concat()
        t = self._peek()
        if t and t[0] == "op" and t[1] in ("=", "!=", "<", ">", "<=", ">="):
            self.i += 1
            return ("cmp", t[1], left, self._concat())
        return left

    def _concat(self) -> Any:
        node = self._primary()
        while (t := self._peek()) and t == ("op", "&"):
            self.i += 1
            node = ("cat", node, self._primary())
        return node

    def _primary(self) -> Any:
        t = self._peek()
        if t is None:
            self._bad()
        kind, val = t
        self.i += 1
        if kind in ("num", "str"):
            return ("lit", val)
        if kind == "field":
            return ("field", val)
        if kind == "op" and val == "(":
            node = self._expr()
            self._eat("op", ")")
            return node
        if kind == "name":
            self._eat("op", "(")
            args = []
            if self._peek() != ("op", ")"):
                args.append(self._expr())
                while self._peek() == ("op", ","):
                    self.i += 1
                    args.append(self._expr())
            self._eat("op", ")")
            return ("call", val.upper(), args)
        self._bad()

    def eval(self, rec: dict[str, Any], table: Table) -> Any:
        return self._eval(self.ast, rec, table)

    def _eval(self, node: Any, rec: dict[str, Any], table: Table) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "field":
            f = table.field(node[1])
            if f is None:
                raise AirtableError(422, "INVALID_FILTER_BY_FORMULA", f"Unknown field names: {node[1].lower()}")
            v = rec["fields"].get(f.name)
            return "" if v is None else v
        if kind == "cat":
            return _text(self._eval(node[1], rec, table)) + _text(self._eval(node[2], rec, table))
        if kind == "cmp":
            return _compare(node[1], self._eval(node[2], rec, table), self._eval(node[3], rec, table))
        name, args = node[1], node[2]
        vals = lambda: [self._eval(a, rec, table) for a in args]  # noqa: E731
        if name == "AND":
            return all(_truthy(v) for v in vals())
        if name == "OR":
            return any(_truthy(v) for v in vals())
        if name == "NOT":
            return not _truthy(vals()[0])
        if name == "TRUE":
            return True
        if name == "FALSE":
            return False
        if name == "BLANK":
            return ""
        if name == "RECORD_ID":
            return rec["id"]
        if name == "LEN":
            return len(_text(vals()[0]))
        if name == "LOWER":
            return _text(vals()[0]).lower()
        if name == "UPPER":
            return _text(vals()[0]).upper()
        if name == "TRIM":
            return _text(vals()[0]).strip()
        raise AirtableError(422, "INVALID_FILTER_BY_FORMULA", f"Unsupported function {name} (emulator)")


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "" if v is None else str(v)


def _truthy(v: Any) -> bool:
    return bool(v) and v != "0"


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _compare(op: str, a: Any, b: Any) -> bool:
    na, nb = _num(a), _num(b)
    numeric = isinstance(a, (int, float)) or isinstance(b, (int, float))
    if numeric and na is not None and nb is not None:
        x, y = na, nb
    else:
        x, y = _text(a), _text(b)
    return {
        "=": x == y,
        "!=": x != y,
        "<": x < y,
        ">": x > y,
        "<=": x <= y,
        ">=": x >= y,
    }[op]


# ---------------------------------------------------------------------------------------
# Emulator
# ---------------------------------------------------------------------------------------


class AirtableEmulator(BackendEmulator):
    tokens_env = "AIOS_EMU_AIRTABLE_TOKENS"
    api_root = "/v0"
    error_body = staticmethod(airtable_error)

    def __init__(self, tokens: Iterable[str] | None = None, auto_create: bool = False) -> None:
        super().__init__(tokens, auto_create)
        self.bases: dict[str, Base] = {}
        self._seq = itertools.count(1)

    # -- values -------------------------------------------------------------------------
    def _coerce(self, f: FieldDef, value: Any, typecast: bool) -> Any:
        if value is None or value == "":
            return None
        bad = AirtableError(
            422,
            "INVALID_VALUE_FOR_COLUMN",
            f'Field "{f.name}" cannot accept the provided value',
        )
        if f.type in TEXT_TYPES:
            if isinstance(value, str):
                return value
            if typecast and isinstance(value, (int, float, bool)):
                return _text(value) if not isinstance(value, bool) else ("true" if value else "false")
            raise bad
        if f.type in NUMBER_TYPES:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
            if typecast and isinstance(value, str):
                n = _num(value)
                if n is None:
                    return None
                return int(n) if n.is_integer() else n
            raise bad
        if f.type == "checkbox":
            if isinstance(value, bool):
                return value or None
            if typecast:
                return bool(value) or None
            raise bad
        raise bad  # pragma: no cover

    def _write_fields(self, table: Table, rec: dict[str, Any], fields: dict[str, Any], typecast: bool, replace: bool) -> None:
        if not isinstance(fields, dict):
            raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "Invalid request: parameter validation failed. 'fields' must be an object")
        new: dict[str, Any] = {} if replace else dict(rec["fields"])
        for name, value in fields.items():
            f = table.field(name)
            if f is None:
                raise AirtableError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
            v = self._coerce(f, value, typecast)
            if v is None:
                new.pop(f.name, None)
            else:
                new[f.name] = v
        rec["fields"] = new

    def _out(self, rec: dict[str, Any], only: list[str] | None = None) -> dict[str, Any]:
        fields = {k: v for k, v in rec["fields"].items() if v not in (None, "", False, []) and (only is None or k in only)}
        return {"id": rec["id"], "createdTime": rec["createdTime"], "fields": fields}

    def _log(self, base: Base, table: Table, op: str, rec: dict[str, Any]) -> None:
        self.log.append({"seq": next(self._seq), "base": base.id, "table": table.name, "op": op, "id": rec["id"], "fields": dict(rec["fields"])})

    def _new_record(self, base: Base, table: Table, fields: dict[str, Any], typecast: bool) -> dict[str, Any]:
        rec = {"id": _rid("rec"), "createdTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "fields": {}}
        self._write_fields(table, rec, fields, typecast, replace=True)
        table.records[rec["id"]] = rec
        self._log(base, table, "create", rec)
        return rec

    # -- operations ---------------------------------------------------------------------
    def list_records(self, base: Base, table: Table, opts: dict[str, Any]) -> dict[str, Any]:
        formula = opts.get("filterByFormula")
        parsed = _Formula(formula) if formula else None
        recs = [r for r in table.records.values() if parsed is None or _truthy(parsed.eval(r, table))]
        max_records = opts.get("maxRecords")
        if max_records is not None:
            recs = recs[: int(max_records)]
        page_size = min(100, int(opts.get("pageSize") or 100))
        if page_size < 1:
            raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "pageSize must be between 1 and 100")
        start = 0
        offset = opts.get("offset")
        if offset:
            m = re.match(r"^itr(\d+)/", str(offset))
            if not m:
                raise AirtableError(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE", "Invalid offset")
            start = int(m.group(1))
        page = recs[start : start + page_size]
        only = opts.get("fields")
        out: dict[str, Any] = {"records": [self._out(r, only) for r in page]}
        if start + page_size < len(recs):
            out["offset"] = f"itr{start + page_size:08d}/{page[-1]['id']}"
        return out

    def create(self, base: Base, table: Table, body: dict[str, Any]) -> dict[str, Any]:
        typecast = bool(body.get("typecast"))
        if "records" in body:
            items = body["records"]
            self._check_batch(items)
            return {"records": [self._out(self._new_record(base, table, r.get("fields", {}), typecast)) for r in items]}
        return self._out(self._new_record(base, table, body.get("fields", {}), typecast))

    def _check_batch(self, items: Any) -> None:
        if not isinstance(items, list) or not items:
            raise AirtableError(422, "INVALID_REQUEST_MISSING_FIELDS", "Could not find field \"records\" in the request body")
        if len(items) > MAX_BATCH:
            raise AirtableError(422, "INVALID_RECORDS", f"You can only create, update or delete up to {MAX_BATCH} records per request")

    def update_many(self, base: Base, table: Table, body: dict[str, Any], replace: bool) -> dict[str, Any]:
        typecast = bool(body.get("typecast"))
        items = body.get("records")
        self._check_batch(items)
        upsert = body.get("performUpsert")
        merge_on = (upsert or {}).get("fieldsToMergeOn") if upsert else None
        if upsert is not None and (not isinstance(merge_on, list) or not merge_on or not all(isinstance(x, str) for x in merge_on)):
            raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "performUpsert.fieldsToMergeOn must be a non-empty list of field names")
        # validate everything first so a bad request changes nothing
        snapshot = copy.deepcopy(table.records)
        created, updated, out = [], [], []
        try:
            for item in items:
                fields = item.get("fields", {})
                rid = item.get("id")
                if rid is None and merge_on is None:
                    raise AirtableError(422, "INVALID_RECORDS", "Record id is required unless performUpsert is set")
                if rid is None:
                    for name in merge_on:
                        if table.field(name) is None:
                            raise AirtableError(422, "INVALID_VALUE_FOR_COLUMN", f'Field "{name}" used in fieldsToMergeOn does not exist')
                        if name not in fields:
                            raise AirtableError(422, "INVALID_VALUE_FOR_COLUMN", f'Field "{name}" is required in fieldsToMergeOn')
                    want = {n: _text(self._coerce(table.field(n), fields[n], typecast)) for n in merge_on}
                    hits = [r for r in table.records.values() if all(_text(r["fields"].get(table.field(n).name)) == v for n, v in want.items())]
                    if len(hits) > 1:
                        raise AirtableError(422, "INVALID_VALUE_FOR_COLUMN", f"Multiple records match the fieldsToMergeOn values {want}")
                    if not hits:
                        rec = self._new_record(base, table, fields, typecast)
                        created.append(rec["id"])
                        out.append(self._out(rec))
                        continue
                    rec = hits[0]
                else:
                    rec = table.records.get(rid)
                    if rec is None:
                        raise AirtableError(404, "NOT_FOUND", f"Record {rid} not found")
                self._write_fields(table, rec, fields, typecast, replace)
                self._log(base, table, "update", rec)
                updated.append(rec["id"])
                out.append(self._out(rec))
        except AirtableError:
            table.records = snapshot
            raise
        result: dict[str, Any] = {"records": out}
        if upsert is not None:
            result["createdRecords"] = created
            result["updatedRecords"] = updated
        return result

    def update_one(self, base: Base, table: Table, rid: str, body: dict[str, Any], replace: bool) -> dict[str, Any]:
        rec = table.records.get(rid)
        if rec is None:
            raise AirtableError(404, "NOT_FOUND", f"Record {rid} not found")
        self._write_fields(table, rec, body.get("fields", {}), bool(body.get("typecast")), replace)
        self._log(base, table, "update", rec)
        return self._out(rec)

    def delete(self, base: Base, table: Table, ids: list[str]) -> dict[str, Any]:
        if len(ids) > MAX_BATCH:
            raise AirtableError(422, "INVALID_RECORDS", f"You can only delete up to {MAX_BATCH} records per request")
        for rid in ids:
            if rid not in table.records:
                raise AirtableError(404, "NOT_FOUND", f"Record {rid} not found")
        out = []
        for rid in ids:
            rec = table.records.pop(rid)
            self._log(base, table, "delete", rec)
            out.append({"id": rid, "deleted": True})
        return {"records": out}

    def create_table(self, base: Base, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        fields = body.get("fields")
        if not isinstance(name, str) or not name.strip():
            raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "Table name is required")
        if any(t.name.lower() == name.lower() for t in base.tables):
            raise AirtableError(422, "DUPLICATE_TABLE_NAME", f"A table named {name!r} already exists")
        if not isinstance(fields, list) or not fields:
            raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "A table needs at least one field")
        defs = [self._field_def(None, f) for f in fields]
        names = [d.name.lower() for d in defs]
        if len(set(names)) != len(names):
            raise AirtableError(422, "DUPLICATE_OR_EMPTY_FIELD_NAME", "Field names must be unique")
        t = Table(_rid("tbl"), name, defs)
        base.tables.append(t)
        return t.schema()

    def _field_def(self, table: Table | None, body: dict[str, Any]) -> FieldDef:
        name, kind = body.get("name"), body.get("type")
        if not isinstance(name, str) or not name.strip():
            raise AirtableError(422, "DUPLICATE_OR_EMPTY_FIELD_NAME", "Field name is required")
        if kind not in FIELD_TYPES:
            raise AirtableError(422, "INVALID_FIELD_TYPE", f"Unsupported field type {kind!r} (emulator)")
        if table is not None and any(f.name.lower() == name.lower() for f in table.fields):
            raise AirtableError(422, "DUPLICATE_OR_EMPTY_FIELD_NAME", f"Field {name!r} already exists")
        return FieldDef(_rid("fld"), name, kind, body.get("options"))

    # -- HTTP ---------------------------------------------------------------------------
    def over_limit(self, request: Request, path: str) -> Response | None:
        parts = path.strip("/").split("/")
        base = parts[3] if len(parts) > 3 and parts[1] == "meta" else (parts[1] if len(parts) > 1 else "")
        buckets = [(f"token:{bearer_token(request) or ''}", AIRTABLE_PER_TOKEN), (f"base:{base}", AIRTABLE_PER_BASE)]
        if self.limits.admit(buckets, penalty=AIRTABLE_PENALTY):
            return None
        # Airtable: no Retry-After; the base stays blocked for 30 seconds
        return JSONResponse(airtable_error(429, "Rate limit exceeded. Please try again later"), 429)

    async def _api(self, request: Request, path: str) -> Response:
        tok = bearer_token(request)
        if not tok or tok not in self.tokens:
            return JSONResponse({"error": {"type": "AUTHENTICATION_REQUIRED", "message": "Authentication required"}}, 401)
        try:
            raw = await request.body()
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "Request body must be an object")
            q = parse_qs(request.url.query, keep_blank_values=True)
            with self.lock:
                return JSONResponse(self._dispatch(request.method, path, q, body))
        except AirtableError as exc:
            return JSONResponse({"error": {"type": exc.kind, "message": exc.message}}, exc.status)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return JSONResponse({"error": {"type": "INVALID_REQUEST_UNKNOWN", "message": f"Invalid request: {exc}"}}, 422)

    def _base(self, base_id: str) -> Base:
        if base_id not in self.bases and self.auto_create:
            self.bases[base_id] = Base(base_id)
        base = self.bases.get(base_id)
        if base is None:
            raise AirtableError(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", "Invalid permissions, or the requested model was not found.")
        return base

    def _dispatch(self, method: str, path: str, q: dict[str, list[str]], body: dict[str, Any]) -> Any:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) < 2 or parts[0] != "v0":
            raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
        if parts[1] == "meta":
            # /v0/meta/bases/{base}/tables[/{table}/fields]
            if len(parts) >= 5 and parts[2] == "bases" and parts[4] == "tables":
                base = self._base(parts[3])
                if len(parts) == 5 and method == "GET":
                    return {"tables": [t.schema() for t in base.tables]}
                if len(parts) == 5 and method == "POST":
                    return self.create_table(base, body)
                if len(parts) == 7 and parts[6] == "fields" and method == "POST":
                    table = base.table(parts[5])
                    f = self._field_def(table, body)
                    table.fields.append(f)
                    return f.schema()
            raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
        base = self._base(parts[1])
        if len(parts) < 3:
            raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
        table = base.table(parts[2])
        rest = parts[3:]
        if not rest:
            if method == "GET":
                opts = {
                    "filterByFormula": (q.get("filterByFormula") or [None])[0],
                    "pageSize": (q.get("pageSize") or [None])[0],
                    "maxRecords": (q.get("maxRecords") or [None])[0],
                    "offset": (q.get("offset") or [None])[0],
                    "fields": q.get("fields[]") or None,
                }
                return self.list_records(base, table, opts)
            if method == "POST":
                return self.create(base, table, body)
            if method in ("PATCH", "PUT"):
                return self.update_many(base, table, body, replace=method == "PUT")
            if method == "DELETE":
                return self.delete(base, table, q.get("records[]", []))
        elif rest == ["listRecords"] and method == "POST":
            return self.list_records(base, table, body)
        elif len(rest) == 1:
            rid = rest[0]
            if method == "GET":
                rec = table.records.get(rid)
                if rec is None:
                    raise AirtableError(404, "NOT_FOUND", f"Record {rid} not found")
                return self._out(rec)
            if method in ("PATCH", "PUT"):
                return self.update_one(base, table, rid, body, replace=method == "PUT")
            if method == "DELETE":
                return self.delete(base, table, [rid])["records"][0]
        raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")

    # -- control ------------------------------------------------------------------------
    async def control_base(self, request: Request) -> Response:
        bid = request.path_params["base"]
        with self.lock:
            if request.method == "PUT":
                raw = await request.body()
                body = json.loads(raw) if raw else {}
                base = Base(bid)
                for spec in body.get("tables", []):
                    schema = self.create_table(base, {"name": spec["name"], "fields": spec["fields"]})
                    table = base.table(schema["id"])
                    for fields in spec.get("records", []):
                        rec = {"id": _rid("rec"), "createdTime": "2024-01-01T00:00:00.000Z", "fields": dict(fields)}
                        table.records[rec["id"]] = rec
                self.bases[bid] = base
            elif request.method == "DELETE":
                self.bases.pop(bid, None)
                return JSONResponse({"deleted": bid})
            base = self.bases.get(bid)
            if base is None:
                return JSONResponse({"error": "not found"}, 404)
            return JSONResponse(
                {"id": bid, "tables": [{**t.schema(), "records": [self._out(r) for r in t.records.values()]} for t in base.tables]}
            )

    def forget(self) -> None:
        self.bases.clear()


def build_airtable_app(tokens: Iterable[str] | None = None, *, auto_create: bool = False) -> Starlette:
    """``auto_create``: any base id exists (empty) on first use, no control call needed."""
    emu = AirtableEmulator(tokens, auto_create)
    return emu.app([Route("/_control/bases/{base}", emu.control_base, methods=["GET", "PUT", "DELETE"])])


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual use
    serve_backend(build_airtable_app, "Airtable API emulator", 8092, argv)


if __name__ == "__main__":  # pragma: no cover
    main()
