"""Google Sheets backend through the real ``gspread`` client.

One worksheet per table. Row 1 is the header: ``key``, ``version``,
``updated_at``, then one column per data field (added on first use, to the
right). Cells hold :mod:`aios.state.codec` text, written with
``valueInputOption=RAW`` (no formula evaluation of user data).

Endpoint override: gspread builds every URL from the constant
``https://sheets.googleapis.com`` (``gspread.urls``), so we give
``gspread.Client`` our own ``http_client`` class -- a subclass of
``gspread.http_client.HTTPClient`` that rewrites that prefix to
``AIOS_STATE_SHEETS_API_URL`` in ``request()``. No monkeypatching; every other
part of gspread (sessions, auth, error handling) is the real thing.

Auth (settings): ``AIOS_STATE_SHEETS_CREDENTIALS_FILE`` -- a service-account
JSON or an OAuth authorized-user JSON (its ``token_uri`` is used for the
token exchange, so pointing it at the emulator's ``/token`` works offline) --
or ``AIOS_STATE_SHEETS_TOKEN``, a ready access token. ``AIOS_STATE_SHEETS_TOKEN_URI``
overrides the token endpoint (google-auth ignores ``token_uri`` in
authorized-user files).

Requests per operation: get/list 1 (+1 metadata on first use), upsert 2,
upsert_many 2-3 whatever the batch size (one read, one ``values.batchUpdate`` for
changed/deleted rows, one ``values.append`` for new keys), delete 2.

Rows: the server allocates the rows of new records (``values.append`` with
``insertDataOption=INSERT_ROWS``), so writers that share no lock folder (two
machines) never write two new keys into the same row. An append is not
idempotent: before re-sending one whose answer was lost, the store reads the
worksheet and skips the rows that landed. Duplicate rows of one key (two
writers creating the same new key) are resolved on read by
:func:`~aios.state.remote.pick_winner` and blanked by the next write of that key.

Pacing: reads (GET) and writes are paced separately (``AIOS_STATE_SHEETS_READS_PER_MINUTE``
/ ``..._WRITES_PER_MINUTE``, default 60 each, Google's per-user quota), see
:mod:`aios.state.pacing`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import gspread
import requests
from google.auth import exceptions as gexc
from google.oauth2 import credentials as user_creds
from google.oauth2 import service_account
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient
from gspread.utils import rowcol_to_a1

from aios.core.retry_after import parse_retry_after

from . import codec
from .base import BackendUnavailable, Record, StateError, parse_time
from .config import StateSettings
from .pacing import Pacer, RateLimit, mount_pacing
from .remote import Current, PartialWrite, RemoteStore, Write, pick_winner, transport_error
from .retry import RetryPolicy, TransientError, transient_status

GOOGLE_SHEETS = "https://sheets.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]
META = ("key", "version", "updated_at")


def _http_client_for(api_url: str | None) -> type[HTTPClient]:
    """An ``HTTPClient`` class that sends gspread's requests to ``api_url``."""
    if not api_url:
        return HTTPClient
    base = api_url.rstrip("/")

    class RedirectingHTTPClient(HTTPClient):
        def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> requests.Response:
            if endpoint.startswith(GOOGLE_SHEETS):
                endpoint = base + endpoint[len(GOOGLE_SHEETS) :]
            return super().request(method, endpoint, *args, **kwargs)

    return RedirectingHTTPClient


def load_credentials(settings: StateSettings) -> Any:
    """google-auth credentials from settings; errors never include secret material."""
    if settings.sheets_token is not None:
        return user_creds.Credentials(token=settings.sheets_token.get_secret_value())
    path = settings.sheets_credentials_file
    if path is None:
        raise StateError(
            "state settings: the sheets backend needs AIOS_STATE_SHEETS_CREDENTIALS_FILE "
            "(service-account or authorized-user JSON) or AIOS_STATE_SHEETS_TOKEN"
        )
    path = Path(path).expanduser()
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StateError(f"{path}: cannot read credentials file: {exc.strerror or exc}") from None
    except ValueError:
        raise StateError(f"{path}: credentials file is not valid JSON") from None
    if not isinstance(info, dict):
        raise StateError(f"{path}: credentials file must be a JSON object")
    kind = info.get("type")
    try:
        creds = None
        if kind == "service_account":
            creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        elif kind == "authorized_user":
            # google-auth always uses Google's token endpoint for these; override explicitly
            creds = user_creds.Credentials.from_authorized_user_info(info, scopes=SCOPES)
        if creds is not None:
            return creds.with_token_uri(settings.sheets_token_uri) if settings.sheets_token_uri else creds
    except (ValueError, KeyError, TypeError) as exc:
        # google-auth messages name missing fields; never the values. Keep only the field list.
        detail = "missing or invalid fields"
        m = re.search(r"missing fields? ([\w, ]+)", str(exc))
        if m:
            detail = f"missing fields {m.group(1).strip()}"
        raise StateError(f"{path}: invalid {kind} credentials ({detail})") from None
    raise StateError(
        f"{path}: unsupported credentials type {kind!r} (expected 'service_account' or 'authorized_user')"
    )


def spreadsheet_id(value: str) -> str:
    value = value.strip()
    if "/" in value:
        try:
            return gspread.utils.extract_id_from_url(value)
        except gspread.exceptions.NoValidUrlKeyFound:
            raise StateError(f"state settings: AIOS_STATE_SHEETS_SPREADSHEET: no spreadsheet id in {value!r}") from None
    return value


def _quote(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def _col(i: int) -> str:
    """Column letters of 0-based column `i` (0 -> A, 26 -> AA), by gspread's own A1 arithmetic: the
    client's, not the Sheets emulator's, so a mistake cannot hide on both sides of the wire."""
    return rowcol_to_a1(1, i + 1)[:-1]


def _first_row(a1_range: str) -> int:
    """First row number of an A1 range like ``'t'!A5:F6`` (0 if there is none)."""
    m = re.search(r"!\$?[A-Za-z]*\$?(\d+)", a1_range)
    return int(m.group(1)) if m else 0


def _cell_str(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "" if v is None else str(v)


class SheetsStore(RemoteStore):
    backend = "sheets"

    def __init__(
        self,
        spreadsheet: str,
        credentials: Any,
        *,
        api_url: str | None = None,
        policy: RetryPolicy | None = None,
        lock_dir: Path,
        timeout: float = 30.0,
        reads: RateLimit = RateLimit(60, 60.0),
        writes: RateLimit = RateLimit(60, 60.0),
        pacing_dir: Path | None = None,
    ) -> None:
        self.spreadsheet_id = spreadsheet_id(spreadsheet)
        self.identity = f"sheets:{self.spreadsheet_id}"
        self.where = f"spreadsheet {self.spreadsheet_id}"
        super().__init__(policy or RetryPolicy(), lock_dir)
        client = gspread.Client(credentials, http_client=_http_client_for(api_url))
        client.set_timeout(timeout)
        self._http: HTTPClient = client.http_client
        self.session = self._http.session
        if pacing_dir is not None:
            # reads and writes have separate per-minute quotas (GET = read)
            read_pacer = Pacer(f"{self.identity}:read", reads, pacing_dir)
            write_pacer = Pacer(f"{self.identity}:write", writes, pacing_dir)
            mount_pacing(self.session, lambda req: [read_pacer if req.method == "GET" else write_pacer])
        self._meta: dict[str, dict[str, int]] | None = None
        self._headers: dict[str, list[str]] = {}

    @classmethod
    def from_settings(cls, settings: StateSettings) -> SheetsStore:
        if not settings.sheets_spreadsheet:
            raise StateError("state settings: the sheets backend needs AIOS_STATE_SHEETS_SPREADSHEET (key or URL)")
        return cls(
            settings.sheets_spreadsheet,
            load_credentials(settings),
            api_url=settings.sheets_api_url,
            policy=settings.retry_policy(),
            lock_dir=settings.lock_dir(),
            timeout=settings.http_timeout,
            reads=RateLimit(settings.sheets_reads_per_minute, 60.0 * settings.rate_window_scale),
            writes=RateLimit(settings.sheets_writes_per_minute, 60.0 * settings.rate_window_scale),
            pacing_dir=settings.pacing_dir(),
        )

    # -- error mapping ------------------------------------------------------------------
    def _translate(self, exc: BaseException, what: str) -> BaseException:
        if isinstance(exc, APIError):
            status = exc.response.status_code
            try:
                message = str(exc.error.get("message", "")).splitlines()[0][:200]
            except Exception:  # noqa: BLE001
                message = ""
            if (transient := transient_status(status, exc.response.headers.get("Retry-After"))) is not None:
                return transient
            if status in (401, 403):
                return StateError(
                    f"{self.where}: {what}: access denied (HTTP {status}); check the credentials "
                    "and that the spreadsheet is shared with them"
                )
            if status == 404:
                return StateError(f"{self.where}: spreadsheet not found (HTTP 404); check AIOS_STATE_SHEETS_SPREADSHEET")
            return StateError(f"{self.where}: {what}: HTTP {status}: {message}")
        transient = transport_error(exc)
        if transient is not None:
            return transient
        if isinstance(exc, gexc.RefreshError):
            if getattr(exc, "retryable", False):
                return TransientError("token endpoint unavailable")
            return StateError(
                f"{self.where}: {what}: authentication failed: could not obtain an access token "
                "(check AIOS_STATE_SHEETS_CREDENTIALS_FILE / AIOS_STATE_SHEETS_TOKEN)"
            )
        if isinstance(exc, gexc.TransportError):
            return TransientError("token endpoint unreachable")
        if isinstance(exc, gexc.GoogleAuthError):
            return StateError(f"{self.where}: {what}: authentication error ({type(exc).__name__})")
        return StateError(f"{self.where}: {what}: unexpected {type(exc).__name__}")

    def _ping(self) -> None:
        self._http.fetch_sheet_metadata(self.spreadsheet_id, params={"fields": "spreadsheetId"})

    # -- metadata -----------------------------------------------------------------------
    def _sheets(self, refresh: bool = False) -> dict[str, dict[str, int]]:
        if self._meta is None or refresh:
            meta = self.call("read spreadsheet metadata", lambda: self._http.fetch_sheet_metadata(self.spreadsheet_id))
            title = meta.get("properties", {}).get("title")
            if title:
                self.where = f"spreadsheet {title!r} ({self.spreadsheet_id})"
            self._meta = {
                s["properties"]["title"]: {
                    "sheetId": s["properties"]["sheetId"],
                    "rows": s["properties"].get("gridProperties", {}).get("rowCount", 1000),
                    "cols": s["properties"].get("gridProperties", {}).get("columnCount", 26),
                }
                for s in meta.get("sheets", [])
            }
        return self._meta

    def _ws(self, table: str) -> str:
        return f"{self.where} worksheet {table!r}"

    # -- primitives ---------------------------------------------------------------------
    def _fetch(self, table: str, keys: Collection[str] | None) -> dict[str, Current]:
        sheets = self._sheets()
        if table not in sheets:
            sheets = self._sheets(refresh=True)  # another process may have created it
            if table not in sheets:
                self._headers.pop(table, None)
                return {}
        try:
            resp = self.call(
                f"worksheet {table!r}: read",
                lambda: self._http.values_get(
                    self.spreadsheet_id, _quote(table), params={"valueRenderOption": "UNFORMATTED_VALUE"}
                ),
            )
        except StateError as exc:
            if "Unable to parse range" in str(exc):  # deleted meanwhile
                self._sheets(refresh=True)
                self._headers.pop(table, None)
                return {}
            raise
        return self._parse(table, resp.get("values", []), None if keys is None else set(keys))

    def _parse(self, table: str, values: list[list[Any]], keys: set[str] | None) -> dict[str, Current]:
        ws = self._ws(table)
        if not values:
            self._headers[table] = []  # empty worksheet: we will write the header
            return {}
        header = [_cell_str(c).strip() for c in values[0]]
        if not any(header):
            raise StateError(f"{ws}: missing header row (row 1 is empty; expected {', '.join(META)}, then data fields)")
        seen: dict[str, int] = {}
        for i, name in enumerate(header):
            if not name:
                continue
            if name in seen:
                raise StateError(f"{ws}: duplicate column {name!r} in the header row (columns {_col(seen[name])} and {_col(i)})")
            seen[name] = i
        for name in META:
            if name not in seen:
                raise StateError(f"{ws}: header row has no {name!r} column (expected {', '.join(META)}, then data fields)")
        self._headers[table] = header
        kcol, vcol, tcol = seen["key"], seen["version"], seen["updated_at"]
        fields = [(i, n) for i, n in enumerate(header) if n and n not in META]
        found: dict[str, list[Current]] = {}
        for r, row in enumerate(values[1:], start=2):
            cells = list(row) + [""] * (len(header) - len(row))
            key = _cell_str(cells[kcol]).strip()
            if not key:
                if any(_cell_str(c).strip() for c in cells):
                    raise StateError(f"{ws}: row {r} has data but no key")
                continue
            if keys is not None and key not in keys:
                continue
            try:
                version = int(_cell_str(cells[vcol]))
                updated = parse_time(_cell_str(cells[tcol]))
                data = {n: codec.decode(cells[i]) for i, n in fields if cells[i] != "" and cells[i] is not None}
                rec = Record(table=table, key=key, version=version, updated_at=updated, data=data)
            except (ValueError, TypeError) as exc:
                msg = str(exc).splitlines()[0][:120]
                raise StateError(f"{ws}: row {r} (key {key!r}) is malformed: {msg}") from None
            found.setdefault(key, []).append(Current(rec, r))
        return {key: pick_winner(rows) for key, rows in found.items()}

    def _row(self, header: list[str], w: Write) -> list[Any]:
        assert w.data is not None
        row: list[Any] = []
        for name in header:
            if name == "key":
                row.append(w.key)
            elif name == "version":
                row.append(w.version)
            elif name == "updated_at":
                row.append(w.updated_at.isoformat())
            elif name and name in w.data:
                row.append(codec.encode(w.data[name]))
            else:
                row.append("")
        return row

    def _apply(self, table: str, writes: Sequence[Write], current: dict[str, Current]) -> None:
        """Updates and deletes in ONE ``values.batchUpdate`` at their rows; new records in ONE append.

        The server allocates the rows of new records (``values.append``), so writers
        that share no lock never pick the same row. Deleting a record blanks its
        row (``deleteDimension`` would shift the rows other writers address);
        blank rows are ignored on read. Duplicate rows of a written key are blanked.
        """
        applied: set[str] = set()
        try:
            for attempt in range(2):
                try:
                    self._apply_once(table, writes, current, applied)
                    return
                except StateError as exc:
                    if attempt or "exceeds grid limits" not in str(exc):
                        raise
                    self._sheets(refresh=True)  # someone resized the worksheet
        except PartialWrite:
            raise
        except BackendUnavailable as exc:
            raise PartialWrite(str(exc), applied) from None

    def _apply_once(self, table: str, writes: Sequence[Write], current: dict[str, Current], applied: set[str]) -> None:
        sid = self.spreadsheet_id
        upserts = [w for w in writes if w.data is not None]
        deletes = [w for w in writes if w.data is None and w.key in current]
        if not upserts and not deletes:
            return
        sheets = self._sheets()
        header = list(self._headers.get(table) or [])
        if table not in sheets:
            body = {"requests": [{"addSheet": {"properties": {"title": table, "gridProperties": {"rowCount": 1000, "columnCount": 26}}}}]}
            try:
                self.call(f"worksheet {table!r}: create", lambda: self._http.batch_update(sid, body))
            except BackendUnavailable:
                raise
            except StateError as exc:
                if "already exists" not in str(exc):
                    raise
            sheets = self._sheets(refresh=True)
            header = []
        header_changed = not header
        if not header:
            header = list(META)
        known = set(header)
        for w in upserts:
            for name in w.data or {}:
                if name not in known:
                    header.append(name)
                    known.add(name)
                    header_changed = True
        info = sheets[table]
        if len(header) > info["cols"]:
            grow = [{"appendDimension": {"sheetId": info["sheetId"], "dimension": "COLUMNS", "length": len(header) - info["cols"]}}]
            self.call(f"worksheet {table!r}: grow grid", lambda: self._http.batch_update(sid, {"requests": grow}))
            info["cols"] = len(header)
        last = _col(len(header) - 1)
        q = _quote(table)
        blank = [""] * len(header)
        data = []
        if header_changed:
            data.append({"range": f"{q}!A1:{last}1", "values": [header]})
        changed = [w for w in upserts if w.key in current]
        for w in changed:
            r = current[w.key].handle
            data.append({"range": f"{q}!A{r}:{last}{r}", "values": [self._row(header, w)]})
        for w in deletes:
            r = current[w.key].handle
            data.append({"range": f"{q}!A{r}:{last}{r}", "values": [blank]})
        for w in [*changed, *deletes]:
            for r in current[w.key].extra:  # losing duplicates of this key
                data.append({"range": f"{q}!A{r}:{last}{r}", "values": [blank]})
        if data:
            body = {"valueInputOption": "RAW", "data": data}
            self.call(f"worksheet {table!r}: write rows", lambda: self._http.values_batch_update(sid, body=body))
        self._headers[table] = header
        for w in changed:
            current[w.key] = Current(self._record(table, w), current[w.key].handle)
            applied.add(w.key)
        for w in deletes:
            current.pop(w.key)
            applied.add(w.key)
        new = [w for w in upserts if w.key not in current]
        if new:
            rows = self._append(table, header, new)
            for w in new:
                current[w.key] = Current(self._record(table, w), rows[w.key])
                applied.add(w.key)

    def _append(self, table: str, header: list[str], new: Sequence[Write]) -> dict[str, int]:
        """Append ``new`` after the last row; return the row of each key.

        An append is not idempotent, so before sending it again after a failed
        attempt we read the worksheet: rows that carry our version and
        ``updated_at`` stamps landed already and are not sent twice.
        """
        sid, q, last = self.spreadsheet_id, _quote(table), _col(len(header) - 1)
        rows: dict[str, int] = {}
        sent = False

        def landed(todo: list[Write]) -> list[Write]:
            """Find the rows of ``todo`` already in the worksheet; return the rest."""
            resp = self._http.values_get(sid, q, params={"valueRenderOption": "UNFORMATTED_VALUE"})
            there = self._parse(table, resp.get("values", []), {w.key for w in todo})
            for w in todo:
                cur = there.get(w.key)
                if cur and cur.record.version == w.version and cur.record.updated_at == w.updated_at:
                    rows[w.key] = cur.handle
            return [w for w in todo if w.key not in rows]

        def attempt() -> dict[str, int]:
            nonlocal sent
            todo = [w for w in new if w.key not in rows]
            if sent:
                todo = landed(todo)
                if not todo:
                    return rows
            sent = True
            params = {"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"}
            body = {"values": [self._row(header, w) for w in todo]}
            resp = self._http.values_append(sid, f"{q}!A1:{last}1", params, body)
            first = _first_row((resp.get("updates") or {}).get("updatedRange", ""))
            if not first:  # no usable answer: look the rows up
                landed(todo)
            for n, w in enumerate(todo):
                rows.setdefault(w.key, first + n)
            return rows

        return self.call(f"worksheet {table!r}: append rows", attempt)

    @staticmethod
    def _record(table: str, w: Write) -> Record:
        return Record(table=table, key=w.key, version=w.version, updated_at=w.updated_at, data=w.data or {})
