"""Comparing two answers to the same skill, field by field. Pure: nothing here calls a model or a server.

Two answers *agree* when, for every compared field:

* objects have the same keys (a key one answer has and the other lacks is a disagreement);
* booleans are equal, and so are values the contract constrains to a set (`enum` or `const`,
  also through `$ref`/`anyOf`/`oneOf`/`allOf`);
* numbers are within a relative tolerance, |a - b| <= tol * max(|a|, |b|) (default 10%);
* lists have the same length (items are then compared pairwise, by position);
* free-text strings are not compared by value (two good models never word a summary alike),
  unless the field is named explicitly in the skill's `compare` rule: then the two strings must
  be equal up to case and whitespace;
* null agrees only with null; different JSON types never agree.

Every answer of every target is compared with one *reference* answer: the first valid answer of
the first target (normally the primary), or of the next target that produced one.

The `compare` rule (SKILL.md front matter, `metadata.compare`, a string) narrows what must agree.
Comma-separated tokens; dotted paths reach into nested objects, and a list's items are reached
through the list's own name (`items.kind` is the `kind` of every element of `items`):

    (absent), ""  or "all"   every field (the default; "*" is the same as "all")
    "none"                   nothing: answers are only checked against the contract
    "fit,priority"           only these fields must agree (free-text strings named here are
                             compared too, ignoring case and whitespace)
    "all,-summary"           every field except `summary`; "-summary" alone means the same
    "score~25%"              a field's own relative number tolerance ("score~0.25" is the same);
                             with "all" it only sets the tolerance: "all,score~25%"

A field's tolerance applies to everything below it; fields without one use the run's tolerance
(`aios validate --tolerance`, default 0.1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from aios.errors import ConfigError

DEFAULT_TOLERANCE = 0.1

_PATH = r"[A-Za-z0-9_$@][A-Za-z0-9_$@\-]*(?:\.[A-Za-z0-9_$@][A-Za-z0-9_$@\-]*)*"
_TOKEN = re.compile(rf"^(?P<neg>-)?(?P<path>{_PATH})(?:~(?P<tol>\d+(?:\.\d+)?)(?P<pct>%)?)?$")

DisagreementKind = Literal["keys", "value", "number", "length", "type"]


# --------------------------------------------------------------------------- the compare rule


@dataclass(frozen=True)
class CompareRule:
    """A parsed `compare` rule (see the module docstring for the syntax)."""

    mode: Literal["all", "only", "none"] = "all"
    fields: tuple[str, ...] = ()  # mode "only": the fields that must agree
    exclude: tuple[str, ...] = ()
    tolerances: tuple[tuple[str, float], ...] = ()
    text: str = "all"

    @classmethod
    def parse(cls, text: str | None, where: str = "metadata.compare") -> CompareRule:
        """Parse a rule; a malformed one raises a one-line ConfigError (`where` names its origin)."""
        raw = (text or "").strip()
        tokens = [t.strip() for t in raw.split(",") if t.strip()]
        if not tokens:
            return cls()
        lowered = [t.lower() for t in tokens]
        if "none" in lowered:
            if len(tokens) > 1:
                raise ConfigError(where, f"'{raw}': 'none' cannot be combined with other fields")
            return cls(mode="none", text="none")
        everything = False
        fields: list[str] = []
        exclude: list[str] = []
        tolerances: list[tuple[str, float]] = []
        for token, low in zip(tokens, lowered, strict=True):
            if low in ("all", "*"):
                everything = True
                continue
            m = _TOKEN.match(token)
            if not m:
                raise ConfigError(
                    where, f"'{token}' is not a field path (a.b), '-field', 'field~10%', 'all' or 'none'"
                )
            path, tol = m.group("path"), m.group("tol")
            if m.group("neg"):
                if tol is not None:
                    raise ConfigError(where, f"'{token}': an excluded field takes no tolerance")
                exclude.append(path)
                continue
            if tol is not None:
                value = float(tol) / 100 if m.group("pct") else float(tol)
                if not math.isfinite(value):
                    raise ConfigError(where, f"'{token}': the tolerance must be a finite number")
                tolerances.append((path, value))
            fields.append(path)
        only = bool(fields) and not everything
        if only and exclude:
            raise ConfigError(where, f"'{raw}': list the fields to compare or the ones to skip, not both")
        if only:
            return cls(mode="only", fields=tuple(dict.fromkeys(fields)), tolerances=tuple(tolerances), text=raw)
        return cls(mode="all", exclude=tuple(dict.fromkeys(exclude)), tolerances=tuple(tolerances), text=raw)

    # A path here is dotted with no list indices: "items.kind"; the root is "".

    def covers(self, path: str) -> bool:
        """Is the value at `path` compared in full (subject to exclusions below it)?"""
        if self.mode == "none":
            return False
        if any(_within(path, x) for x in self.exclude):
            return False
        if self.mode == "all":
            return True
        return any(_within(path, f) for f in self.fields)

    def reaches(self, path: str) -> bool:
        """Is `path` on the way to a compared field (so its structure is walked, not compared)?"""
        if self.mode == "none":
            return False
        if self.mode == "all":
            return not any(_within(path, x) for x in self.exclude)
        return any(_within(f, path) for f in self.fields)

    def named(self, path: str) -> bool:
        """Was this exact field listed by name (so free text is compared too)?"""
        return self.mode == "only" and path in self.fields

    def tolerance(self, path: str, default: float) -> float:
        best: tuple[int, float] | None = None
        for where, tol in self.tolerances:
            if _within(path, where) and (best is None or len(where) > best[0]):
                best = (len(where), tol)
        return best[1] if best else default

    def unknown_fields(self, schema: Mapping[str, Any] | None) -> list[str]:
        """Fields the rule names that the contract does not describe (a typo, most likely)."""
        if not schema:
            return []
        out = []
        for path in (*self.fields, *self.exclude, *(p for p, _ in self.tolerances)):
            node: Any = schema
            for part in path.split("."):
                node = _child_schema(node, part, schema, through_lists=True)
                if node is None:
                    out.append(path)
                    break
        return list(dict.fromkeys(out))

    def __str__(self) -> str:
        return self.text


def _within(path: str, ancestor: str) -> bool:
    """`path` equals `ancestor` or lies below it ("" is the root, above everything)."""
    return ancestor == "" or path == ancestor or path.startswith(ancestor + ".")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --------------------------------------------------------------------------- schema lookups


def _resolve(schema: Any, root: Mapping[str, Any] | None, depth: int = 0) -> Any:
    """Follow a local `$ref` (#/$defs/X, #/definitions/X) to its target."""
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and root is not None and depth < 20:
        ref = schema["$ref"]
        if not ref.startswith("#"):
            return schema
        node: Any = root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, Mapping) else None
            if node is None:
                return None
        schema, depth = node, depth + 1
    return schema


def _branches(schema: Any, root: Mapping[str, Any] | None, depth: int = 0) -> list[Mapping[str, Any]]:
    """The schema and every anyOf/oneOf/allOf branch below it, $refs resolved."""
    schema = _resolve(schema, root)
    if not isinstance(schema, Mapping) or depth > 10:
        return []
    out = [schema]
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or []:
            out += _branches(sub, root, depth + 1)
    return out


def _categorical(schema: Any, root: Mapping[str, Any] | None) -> bool:
    return any("enum" in b or "const" in b for b in _branches(schema, root))


def _child_schema(schema: Any, key: str, root: Mapping[str, Any] | None, through_lists: bool = False) -> Any:
    for branch in _branches(schema, root):
        props = branch.get("properties")
        if isinstance(props, Mapping) and key in props:
            return props[key]
        if through_lists:
            items = _item_schema(branch, 0, root)
            if items is not None:
                found = _child_schema(items, key, root, through_lists=True)
                if found is not None:
                    return found
    for branch in _branches(schema, root):
        extra = branch.get("additionalProperties")
        if isinstance(extra, Mapping):
            return extra
    return None


def _item_schema(schema: Any, index: int, root: Mapping[str, Any] | None) -> Any:
    for branch in _branches(schema, root):
        prefix = branch.get("prefixItems")
        if isinstance(prefix, list) and index < len(prefix):
            return prefix[index]
        items = branch.get("items")
        if isinstance(items, Mapping):
            return items
    return None


# --------------------------------------------------------------------------- comparing two answers


class Disagreement(BaseModel):
    """One place where an answer differs from the reference answer."""

    path: str  # with list indices: "items[2].kind"; "(root)" for the whole answer
    kind: DisagreementKind
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


@dataclass
class _Walk:
    rule: CompareRule
    tolerance: float
    root: Mapping[str, Any] | None
    found: list[Disagreement] = field(default_factory=list)

    def add(self, where: str, kind: DisagreementKind, detail: str) -> None:
        self.found.append(Disagreement(path=where or "(root)", kind=kind, detail=detail))


def compare_answers(
    reference: Any,
    other: Any,
    schema: Mapping[str, Any] | None = None,
    rule: CompareRule | str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[Disagreement]:
    """Every disagreement of `other` with `reference` under `rule` (empty: they agree)."""
    if not isinstance(rule, CompareRule):
        rule = CompareRule.parse(rule)
    walk = _Walk(rule=rule, tolerance=tolerance, root=schema)
    _compare(walk, reference, other, schema, "", "")
    return walk.found


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, (Mapping, list)) else _kind_of(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _compare(walk: _Walk, a: Any, b: Any, schema: Any, path: str, where: str) -> None:
    rule = walk.rule
    full = rule.covers(path)
    if not full and not rule.reaches(path):
        return
    ka, kb = _kind_of(a), _kind_of(b)
    if ka != kb:
        if full or (ka in ("object", "list") or kb in ("object", "list")):
            walk.add(where, "type", f"{_show(a)} vs {_show(b)}")
        return
    if ka == "object":
        keys = list(dict.fromkeys([*a.keys(), *b.keys()]))
        for key in keys:
            sub, sub_where = _join(path, key), _join(where, key)
            if not rule.covers(sub) and not rule.reaches(sub):
                continue
            if (key in a) != (key in b):
                walk.add(sub_where, "keys", "missing in this answer" if key in a else "not in the reference answer")
                continue
            _compare(walk, a[key], b[key], _child_schema(schema, key, walk.root), sub, sub_where)
        return
    if ka == "list":
        if len(a) != len(b):
            walk.add(where, "length", f"{len(a)} vs {len(b)} items")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _compare(walk, x, y, _item_schema(schema, i, walk.root), path, f"{where}[{i}]")
        return
    if not full:
        return
    if ka == "boolean":
        if a != b:
            walk.add(where, "value", f"{_show(a)} vs {_show(b)}")
    elif ka == "number":
        if _categorical(schema, walk.root):
            if a != b:
                walk.add(where, "value", f"{_show(a)} vs {_show(b)}")
            return
        tol = rule.tolerance(path, walk.tolerance)
        scale = max(abs(a), abs(b))
        if abs(a - b) > tol * scale + 1e-12:
            rel = abs(a - b) / scale if scale else 0.0
            walk.add(where, "number", f"{_show(a)} vs {_show(b)} ({rel:.0%} apart; tolerance {tol:.0%})")
    elif ka == "string":
        if _categorical(schema, walk.root):
            if a != b:
                walk.add(where, "value", f"{_show(a)} vs {_show(b)}")
        elif rule.named(path) and _norm(a) != _norm(b):
            walk.add(where, "value", f"{_show(a)} vs {_show(b)}")


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()
