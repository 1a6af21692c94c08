"""Cell encoding shared by the spreadsheet-like backends (Sheets, Airtable).

Every data value is stored as text so that any JSON value round-trips exactly
and humans still read plain strings as themselves:

* a string that is *not* valid JSON (``hello world``, ``new``) is stored as is;
* everything else is stored as its JSON text: numbers (``3``), booleans
  (``true``), lists/dicts (``["a"]``) and the rare strings that would
  otherwise be ambiguous (``"3"``, ``""``, ``"true"``, leading/trailing spaces).

Decoding: a text that parses as JSON is that JSON value, otherwise it is the
string itself. Non-text cells (a number a human typed into a sheet) are taken
as they are.
"""

from __future__ import annotations

import json
from typing import Any


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constants)


def _is_json(text: str) -> bool:
    try:
        _loads(text)
    except ValueError:
        return False
    return True


def encode(value: Any) -> str:
    if isinstance(value, str):
        if value == "" or value != value.strip() or _is_json(value):
            return json.dumps(value, ensure_ascii=False)
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode(cell: Any) -> Any:
    if not isinstance(cell, str):
        return cell
    try:
        return _loads(cell)
    except ValueError:
        return cell
