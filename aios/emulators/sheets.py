"""Google Sheets API v4 emulator (the subset gspread uses), as a standalone Starlette app.

Run alone:  ``python -m aios.emulators.sheets --port 8091 [--token TOKEN ...]``
Mount:      ``Mount("/sheets", app=build_sheets_app())`` (then the API base URL is
            ``http://host:port/sheets``; the OAuth token endpoint is ``.../sheets/token``).

Implemented (under ``/v4/spreadsheets``): spreadsheet get (metadata), ``:batchUpdate``
(addSheet, deleteSheet, updateSheetProperties(title), appendDimension,
deleteDimension, insertDimension), values get / update / append / clear /
batchGet / batchUpdate / batchClear, with A1 ranges, RAW / USER_ENTERED input,
FORMATTED_VALUE / UNFORMATTED_VALUE rendering and grid limits.

Auth: every API call needs ``Authorization: Bearer <token>``; accepted tokens are
the ones given to :func:`build_sheets_app` (default: ``$AIOS_EMU_SHEETS_TOKENS``,
comma separated, else ``emulator-token``) plus tokens issued by ``POST /token``
(OAuth2 token endpoint: JWT-bearer grant for service accounts, refresh_token
grant for authorized users), so real google-auth credential files can point
their ``token_uri`` here and work offline.

Control endpoints (no auth, not counted, never faulted):

* ``PUT /_control/faults`` ``{"mode": "rate_limited"|"error_500"|"slow"|"down"|"none",
  "times": N|null, "after": N, "delay": s, "retry_after": s}`` -- ``times`` null = until
  cleared; ``after`` lets N requests through before the fault starts;
  ``down`` answers 503 (the server keeps running; stopping the process gives
  "connection refused", which clients treat the same way); ``lost`` applies the
  request and then answers 503, like a response lost on the way back; ``cut``
  applies it and sends full headers but half the body, then drops the
  connection; ``truncated`` applies it and answers 200 with half the JSON.
  ``GET`` shows it, ``DELETE`` clears it.
* ``PUT /_control/limits`` ``{"enabled": true, "scale": s}`` enforces Google's published
  quotas -- 60 reads and 60 writes per minute per user (bearer token), 300 per
  project -- with every window multiplied by ``scale``; a breach answers 429
  ``RESOURCE_EXHAUSTED``. ``GET`` shows ``rejected`` (how many 429s), ``DELETE`` turns it off.
* ``GET /_control/requests`` -> ``{"count": n, "requests": [{method, path, status}]}``;
  ``DELETE`` resets the counter.
* ``GET /_control/log`` -> every row written ``{"spreadsheet", "sheet", "row", "values", "op"}``;
  ``DELETE`` clears it.
* ``PUT /_control/spreadsheets/{id}`` ``{"title": ..., "sheets": {"Title": [[...], ...]}}``
  creates (or replaces) a spreadsheet; ``GET`` dumps it; ``DELETE /_control/reset``
  forgets everything.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aios.emulators.base import BackendEmulator, bearer_token, serve_backend

# Google's published quotas (requests, window seconds) enforced in "limits" mode.
SHEETS_PER_USER = (60, 60.0)  # reads and writes counted separately
SHEETS_PER_PROJECT = (300, 60.0)


# ---------------------------------------------------------------------------------------
# A1 notation
# ---------------------------------------------------------------------------------------

_CELL_RE = re.compile(r"^([A-Za-z]*)(\d*)$")


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def google_error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}}


def col_to_index(col: str) -> int:
    n = 0
    for ch in col.upper():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def index_to_col(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def split_range(rng: str) -> tuple[str, str]:
    """``'My Sheet'!A1:B2`` -> ("My Sheet", "A1:B2"); ``Sheet1`` -> ("Sheet1", "")."""
    rng = rng.strip()
    if rng.startswith("'"):
        i, title = 1, ""
        while i < len(rng):
            if rng[i] == "'":
                if i + 1 < len(rng) and rng[i + 1] == "'":
                    title += "'"
                    i += 2
                    continue
                break
            title += rng[i]
            i += 1
        rest = rng[i + 1 :]
        return title, rest[1:] if rest.startswith("!") else rest
    if "!" in rng:
        title, cells = rng.rsplit("!", 1)
        return title, cells
    return rng, ""


@dataclass
class Grid:
    r0: int
    c0: int
    r1: int | None  # inclusive; None = unbounded
    c1: int | None


def parse_cells(cells: str) -> Grid:
    if not cells:
        return Grid(0, 0, None, None)
    parts = cells.split(":")
    if len(parts) > 2:
        raise ApiError(400, f"Unable to parse range: {cells}")
    ms = [_CELL_RE.match(p) for p in parts]
    if any(m is None or (not m.group(1) and not m.group(2)) for m in ms):
        raise ApiError(400, f"Unable to parse range: {cells}")
    (c_a, r_a) = ms[0].group(1), ms[0].group(2)
    if len(parts) == 1:
        if not c_a or not r_a:
            raise ApiError(400, f"Unable to parse range: {cells}")
        r, c = int(r_a) - 1, col_to_index(c_a)
        return Grid(r, c, r, c)
    (c_b, r_b) = ms[1].group(1), ms[1].group(2)
    r0 = int(r_a) - 1 if r_a else 0
    c0 = col_to_index(c_a) if c_a else 0
    r1 = int(r_b) - 1 if r_b else None
    c1 = col_to_index(c_b) if c_b else None
    if r1 is not None and r1 < r0 or c1 is not None and c1 < c0:
        raise ApiError(400, f"Unable to parse range: {cells}")
    return Grid(r0, c0, r1, c1)


def a1(title: str, r0: int, c0: int, r1: int, c1: int) -> str:
    q = "'" + title.replace("'", "''") + "'"
    return f"{q}!{index_to_col(c0)}{r0 + 1}:{index_to_col(c1)}{r1 + 1}"


# ---------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------


@dataclass
class Sheet:
    sheet_id: int
    title: str
    index: int
    rows: int = 1000
    cols: int = 26
    cells: dict[tuple[int, int], Any] = field(default_factory=dict)

    def last_row(self) -> int:
        return max((r for r, _ in self.cells), default=-1)

    def read(self, g: Grid) -> list[list[Any]]:
        r1 = min(self.rows - 1, g.r1 if g.r1 is not None else self.rows - 1)
        c1 = min(self.cols - 1, g.c1 if g.c1 is not None else self.cols - 1)
        out: list[list[Any]] = []
        for r in range(g.r0, r1 + 1):
            row = [self.cells.get((r, c), "") for c in range(g.c0, c1 + 1)]
            while row and row[-1] == "":
                row.pop()
            out.append(row)
        while out and not out[-1]:
            out.pop()
        return out

    def write(self, r0: int, c0: int, values: list[list[Any]]) -> None:
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                if v is None:
                    continue  # null = leave unchanged (as the real API)
                if v == "":
                    self.cells.pop((r0 + i, c0 + j), None)
                else:
                    self.cells[(r0 + i, c0 + j)] = v

    def dump(self) -> list[list[Any]]:
        return self.read(Grid(0, 0, None, None))


@dataclass
class Spreadsheet:
    sid: str
    title: str
    sheets: list[Sheet] = field(default_factory=list)
    next_id: int = 1

    def metadata(self) -> dict[str, Any]:
        return {
            "spreadsheetId": self.sid,
            "properties": {"title": self.title, "locale": "en_US", "timeZone": "Etc/UTC"},
            "sheets": [
                {
                    "properties": {
                        "sheetId": s.sheet_id,
                        "title": s.title,
                        "index": s.index,
                        "sheetType": "GRID",
                        "gridProperties": {"rowCount": s.rows, "columnCount": s.cols},
                    }
                }
                for s in sorted(self.sheets, key=lambda s: s.index)
            ],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.sid}/edit",
        }

    def sheet(self, title: str) -> Sheet:
        for s in self.sheets:
            if s.title == title:
                return s
        raise ApiError(400, f"Unable to parse range: {title}")

    def sheet_by_id(self, sheet_id: int) -> Sheet:
        for s in self.sheets:
            if s.sheet_id == sheet_id:
                return s
        raise ApiError(400, f"No grid with id: {sheet_id}")

    def add_sheet(self, title: str, rows: int = 1000, cols: int = 26, sheet_id: int | None = None) -> Sheet:
        if any(s.title == title for s in self.sheets):
            raise ApiError(
                400,
                f'Invalid requests[0].addSheet: A sheet with the name "{title}" already exists. '
                "Please enter another name.",
            )
        sid = sheet_id if sheet_id is not None else self.next_id
        self.next_id = max(self.next_id, sid) + 1
        s = Sheet(sid, title, len(self.sheets), rows, cols)
        self.sheets.append(s)
        return s


def _user_entered(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    if v.upper() in ("TRUE", "FALSE"):
        return v.upper() == "TRUE"
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


def _formatted(v: Any) -> Any:
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class SheetsEmulator(BackendEmulator):
    tokens_env = "AIOS_EMU_SHEETS_TOKENS"
    api_root = "/v4"
    error_body = staticmethod(google_error)

    def __init__(self, tokens: Iterable[str] | None = None, auto_create: bool = False) -> None:
        super().__init__(tokens, auto_create)
        self.issued: set[str] = set()
        self.books: dict[str, Spreadsheet] = {}

    # -- helpers --------------------------------------------------------------------------
    def book(self, sid: str) -> Spreadsheet:
        if sid not in self.books and self.auto_create:
            self.books[sid] = Spreadsheet(sid, sid)
        try:
            return self.books[sid]
        except KeyError:
            raise ApiError(404, "Requested entity was not found.") from None

    def _log(self, book: Spreadsheet, sheet: Sheet, r0: int, values: list[list[Any]], op: str) -> None:
        for i, row in enumerate(values):
            self.log.append(
                {"spreadsheet": book.sid, "sheet": sheet.title, "row": r0 + i + 1, "values": row, "op": op}
            )

    def _render(self, rows: list[list[Any]], option: str) -> list[list[Any]]:
        if option == "UNFORMATTED_VALUE":
            return rows
        return [[_formatted(v) for v in row] for row in rows]

    def _input(self, values: list[list[Any]], option: str | None) -> list[list[Any]]:
        if option not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, "'valueInputOption' is required but not specified")
        if not isinstance(values, list) or any(not isinstance(r, list) for r in values):
            raise ApiError(400, "Invalid values: expected a list of rows")
        if option == "USER_ENTERED":
            return [[_user_entered(v) for v in row] for row in values]
        return values

    # -- values -------------------------------------------------------------------------
    def values_get(self, book: Spreadsheet, rng: str, render: str, major: str = "ROWS") -> dict[str, Any]:
        title, cells = split_range(rng)
        sheet = book.sheet(title)
        g = parse_cells(cells)
        rows = self._render(sheet.read(g), render)
        if major == "COLUMNS":
            width = max((len(r) for r in rows), default=0)
            rows = [[r[c] if c < len(r) else "" for r in rows] for c in range(width)]
        r1 = min(sheet.rows - 1, g.r1 if g.r1 is not None else sheet.rows - 1)
        c1 = min(sheet.cols - 1, g.c1 if g.c1 is not None else sheet.cols - 1)
        out: dict[str, Any] = {"range": a1(title, g.r0, g.c0, r1, c1), "majorDimension": major}
        if rows:
            out["values"] = rows
        return out

    def values_update(self, book: Spreadsheet, rng: str, values: list[list[Any]], op: str = "update") -> dict[str, Any]:
        title, cells = split_range(rng)
        sheet = book.sheet(title)
        g = parse_cells(cells)
        if cells and ":" not in cells:  # a single cell is only the anchor of the write
            g = Grid(g.r0, g.c0, None, None)
        height = len(values)
        width = max((len(r) for r in values), default=0)
        if g.r1 is not None and g.r0 + height - 1 > g.r1 or g.c1 is not None and g.c0 + width - 1 > g.c1:
            raise ApiError(
                400,
                f"Requested writing within range [{rng}], but tried writing to row "
                f"[{g.r0 + height}] or column [{index_to_col(g.c0 + width - 1)}]",
            )
        if height and (g.r0 + height > sheet.rows or g.c0 + width > sheet.cols):
            raise ApiError(
                400,
                f"Range ('{title}'!{index_to_col(g.c0)}{g.r0 + height}) exceeds grid limits. "
                f"Max rows: {sheet.rows}, max columns: {sheet.cols}",
            )
        sheet.write(g.r0, g.c0, values)
        self._log(book, sheet, g.r0, values, op)
        return {
            "spreadsheetId": book.sid,
            "updatedRange": a1(title, g.r0, g.c0, g.r0 + max(height, 1) - 1, g.c0 + max(width, 1) - 1),
            "updatedRows": height,
            "updatedColumns": width,
            "updatedCells": sum(len(r) for r in values),
        }

    def values_append(self, book: Spreadsheet, rng: str, values: list[list[Any]], insert: str | None) -> dict[str, Any]:
        title, cells = split_range(rng)
        sheet = book.sheet(title)
        g = parse_cells(cells)
        # the "table" is found from the range; we append after the last non-empty row at/after r0
        start = max(g.r0, sheet.last_row() + 1)
        height = len(values)
        width = max((len(r) for r in values), default=0)
        if start + height > sheet.rows:
            sheet.rows = start + height  # append grows the grid
        if g.c0 + width > sheet.cols:
            sheet.cols = g.c0 + width
        sheet.write(start, g.c0, values)
        self._log(book, sheet, start, values, "append")
        c1 = g.c0 + max(width, 1) - 1
        return {
            "spreadsheetId": book.sid,
            "tableRange": a1(title, g.r0, g.c0, max(g.r0, start - 1), c1) if start > g.r0 else None,
            "updates": {
                "spreadsheetId": book.sid,
                "updatedRange": a1(title, start, g.c0, start + max(height, 1) - 1, c1),
                "updatedRows": height,
                "updatedColumns": width,
                "updatedCells": sum(len(r) for r in values),
            },
        }

    def values_clear(self, book: Spreadsheet, rng: str) -> dict[str, Any]:
        title, cells = split_range(rng)
        sheet = book.sheet(title)
        g = parse_cells(cells)
        r1 = g.r1 if g.r1 is not None else sheet.rows - 1
        c1 = g.c1 if g.c1 is not None else sheet.cols - 1
        for (r, c) in list(sheet.cells):
            if g.r0 <= r <= r1 and g.c0 <= c <= c1:
                del sheet.cells[(r, c)]
        self.log.append({"spreadsheet": book.sid, "sheet": title, "row": None, "values": None, "op": f"clear {rng}"})
        return {"spreadsheetId": book.sid, "clearedRange": a1(title, g.r0, g.c0, min(r1, sheet.rows - 1), min(c1, sheet.cols - 1))}

    # -- spreadsheet batchUpdate ---------------------------------------------------------
    def batch_update(self, book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        reqs = body.get("requests")
        if not isinstance(reqs, list):
            raise ApiError(400, "Invalid JSON payload: 'requests' must be a list")
        # validate-then-apply would be ideal; we apply on a copy for atomicity
        snapshot = copy.deepcopy(book)
        replies: list[dict[str, Any]] = []
        try:
            for i, req in enumerate(reqs):
                replies.append(self._one_request(book, i, req))
        except ApiError:
            self.books[book.sid] = snapshot
            raise
        return {"spreadsheetId": book.sid, "replies": replies}

    def _one_request(self, book: Spreadsheet, i: int, req: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(req, dict) or len(req) != 1:
            raise ApiError(400, f"Invalid requests[{i}]: exactly one request kind expected")
        kind, arg = next(iter(req.items()))
        if kind == "addSheet":
            props = arg.get("properties", {})
            grid = props.get("gridProperties", {})
            title = props.get("title") or f"Sheet{book.next_id}"
            s = book.add_sheet(title, int(grid.get("rowCount", 1000)), int(grid.get("columnCount", 26)), props.get("sheetId"))
            return {"addSheet": {"properties": book.metadata()["sheets"][[x.sheet_id for x in sorted(book.sheets, key=lambda x: x.index)].index(s.sheet_id)]["properties"]}}
        if kind == "deleteSheet":
            s = book.sheet_by_id(int(arg.get("sheetId")))
            book.sheets.remove(s)
            for n, x in enumerate(sorted(book.sheets, key=lambda x: x.index)):
                x.index = n
            return {}
        if kind == "updateSheetProperties":
            props = arg.get("properties", {})
            s = book.sheet_by_id(int(props.get("sheetId", 0)))
            fields = str(arg.get("fields", ""))
            if "title" in fields and "title" in props:
                s.title = props["title"]
            grid = props.get("gridProperties", {})
            if "rowCount" in grid:
                s.rows = int(grid["rowCount"])
            if "columnCount" in grid:
                s.cols = int(grid["columnCount"])
            return {}
        if kind == "appendDimension":
            s = book.sheet_by_id(int(arg.get("sheetId", 0)))
            n = int(arg.get("length", 0))
            if arg.get("dimension") == "COLUMNS":
                s.cols += n
            else:
                s.rows += n
            return {}
        if kind in ("deleteDimension", "insertDimension"):
            rng = arg.get("range", {})
            s = book.sheet_by_id(int(rng.get("sheetId", 0)))
            start, end = int(rng.get("startIndex", 0)), int(rng.get("endIndex", 0))
            if end <= start:
                raise ApiError(400, f"Invalid requests[{i}].{kind}: empty range")
            n = end - start
            rows = rng.get("dimension") == "ROWS"
            moved: dict[tuple[int, int], Any] = {}
            for (r, c), v in s.cells.items():
                pos = r if rows else c
                if kind == "deleteDimension":
                    if start <= pos < end:
                        continue
                    if pos >= end:
                        pos -= n
                elif pos >= start:
                    pos += n
                moved[(pos, c) if rows else (r, pos)] = v
            s.cells = moved
            if kind == "deleteDimension":
                if rows:
                    s.rows -= n
                else:
                    s.cols -= n
                self.log.append({"spreadsheet": book.sid, "sheet": s.title, "row": start + 1 if rows else None, "values": None, "op": f"delete {n} {'rows' if rows else 'cols'}"})
            elif rows:
                s.rows += n
            else:
                s.cols += n
            return {}
        raise ApiError(400, f"Invalid requests[{i}]: unsupported request kind {kind!r} (emulator)")

    # -- HTTP ---------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        mode = self.faults.take()
        resp = await self.faults.fault_response(mode, google_error)
        if resp is not None:
            self.faults.record("POST", "/token", resp.status_code)
            return resp
        form = parse_qs((await request.body()).decode())
        grant = (form.get("grant_type") or [""])[0]
        ok = False
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            assertion = (form.get("assertion") or [""])[0]
            ok = _jwt_claims(assertion) is not None
        elif grant == "refresh_token":
            ok = bool((form.get("refresh_token") or [""])[0]) and bool((form.get("client_id") or [""])[0])
        self.faults.record("POST", "/token", 200 if ok else 400)
        if not ok:
            return JSONResponse({"error": "invalid_grant", "error_description": "Bad Request"}, 400)
        tok = "ya29.emu-" + secrets.token_urlsafe(24)
        with self.lock:
            self.issued.add(tok)
        return JSONResponse({"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})

    def over_limit(self, request: Request, path: str) -> Response | None:
        user = bearer_token(request) or ""
        kind = "read" if request.method == "GET" else "write"
        if self.limits.admit([(f"user:{user}:{kind}", SHEETS_PER_USER), (f"project:{kind}", SHEETS_PER_PROJECT)]):
            return None
        return JSONResponse(google_error(429, "Quota exceeded for quota metric 'Requests' (emulated)"), 429)

    async def _api(self, request: Request, path: str) -> Response:
        tok = bearer_token(request)
        if not tok or (tok not in self.tokens and tok not in self.issued):
            return JSONResponse(
                google_error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token."),
                401,
            )
        try:
            body: dict[str, Any] = {}
            if request.method in ("POST", "PUT"):
                raw = await request.body()
                body = json.loads(raw) if raw else {}
            with self.lock:
                return JSONResponse(self._dispatch(request.method, path, dict(request.query_params), request.query_params.getlist("ranges"), body))
        except ApiError as exc:
            return JSONResponse(google_error(exc.code, exc.message), exc.code)
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse(google_error(400, f"Invalid request: {exc}"), 400)

    def _dispatch(self, method: str, path: str, q: dict[str, str], ranges: list[str], body: dict[str, Any]) -> Any:
        prefix = "/v4/spreadsheets/"
        if not path.startswith(prefix):
            raise ApiError(404, f"Unknown path {unquote(path)}")
        rest = path[len(prefix) :]
        render = q.get("valueRenderOption", "FORMATTED_VALUE")
        if "/values" not in rest:
            sid = unquote(rest)
            if sid.endswith(":batchUpdate") and method == "POST":
                return self.batch_update(self.book(sid[: -len(":batchUpdate")]), body)
            if method == "GET":
                return self.book(sid).metadata()
            raise ApiError(404, f"Unknown path {unquote(path)}")
        sid_raw, _, vrest = rest.partition("/values")
        book = self.book(unquote(sid_raw))
        if vrest == ":batchGet" and method == "GET":
            major = q.get("majorDimension", "ROWS")
            return {"spreadsheetId": book.sid, "valueRanges": [self.values_get(book, r, render, major) for r in ranges]}
        if vrest == ":batchUpdate" and method == "POST":
            opt = body.get("valueInputOption")
            out = []
            for d in body.get("data", []):
                out.append(self.values_update(book, d["range"], self._input(d.get("values", []), opt)))
            return {
                "spreadsheetId": book.sid,
                "totalUpdatedRows": sum(r["updatedRows"] for r in out),
                "totalUpdatedCells": sum(r["updatedCells"] for r in out),
                "responses": out,
            }
        if vrest == ":batchClear" and method == "POST":
            return {"spreadsheetId": book.sid, "clearedRanges": [self.values_clear(book, r)["clearedRange"] for r in body.get("ranges", [])]}
        if not vrest.startswith("/"):
            raise ApiError(404, f"Unknown path {unquote(path)}")
        rng_raw = vrest[1:]
        action = ""
        for suffix in (":append", ":clear"):
            if rng_raw.endswith(suffix):
                rng_raw, action = rng_raw[: -len(suffix)], suffix
        rng = unquote(rng_raw)
        if action == ":append" and method == "POST":
            return self.values_append(book, rng, self._input(body.get("values", []), q.get("valueInputOption")), q.get("insertDataOption"))
        if action == ":clear" and method == "POST":
            return self.values_clear(book, rng)
        if not action and method == "GET":
            return self.values_get(book, rng, render, q.get("majorDimension", "ROWS"))
        if not action and method == "PUT":
            return self.values_update(book, rng, self._input(body.get("values", []), q.get("valueInputOption")))
        raise ApiError(404, f"Unknown path {unquote(path)}")

    # -- control ------------------------------------------------------------------------
    async def control_book(self, request: Request) -> Response:
        sid = request.path_params["sid"]
        with self.lock:
            if request.method == "PUT":
                body = await request.json() if await request.body() else {}
                book = Spreadsheet(sid, body.get("title", sid))
                for title, rows in (body.get("sheets") or {}).items():
                    s = book.add_sheet(title, max(1000, len(rows)), max([26] + [len(r) for r in rows]))
                    s.write(0, 0, rows)
                self.books[sid] = book
            elif request.method == "DELETE":
                self.books.pop(sid, None)
                return JSONResponse({"deleted": sid})
            book = self.books.get(sid)
            if book is None:
                return JSONResponse({"error": "not found"}, 404)
            return JSONResponse({"id": sid, "title": book.title, "sheets": {s.title: s.dump() for s in book.sheets}})

    def forget(self) -> None:
        self.books.clear()
        self.issued.clear()


def _jwt_claims(assertion: str) -> dict[str, Any] | None:
    """Decode (not verify: the emulator has no public keys) a JWT-bearer assertion."""
    try:
        _h, payload, _sig = assertion.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    if not isinstance(claims, dict) or "iss" not in claims or claims.get("exp", 0) < time.time():
        return None
    return claims


def build_sheets_app(tokens: Iterable[str] | None = None, *, auto_create: bool = False) -> Starlette:
    """``auto_create``: any spreadsheet id exists (empty) on first use, no control call needed."""
    emu = SheetsEmulator(tokens, auto_create)
    return emu.app([
        Route("/_control/spreadsheets/{sid}", emu.control_book, methods=["GET", "PUT", "DELETE"]),
        Route("/token", emu.token, methods=["POST"]),
    ])


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual use
    serve_backend(build_sheets_app, "Google Sheets API emulator", 8091, argv)


if __name__ == "__main__":  # pragma: no cover
    main()
