"""Deterministic JSON-Schema instance generator.

The LLM emulators answer with data built from the caller's output contract, so any
schema a skill declares validates without a real model. `instance_for` is pure: the
same (schema, seed) always gives the same value, which keeps tests reproducible.
`invalid_instance_for` gives well-formed JSON that breaks the schema (the
`schema_invalid` fault).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from jsonschema import Draft202012Validator, validators

try:  # Python 3.11+: the regex parser lives in re._parser.
    import re._parser as _sre_parse  # type: ignore[import-not-found]
    from re import _constants as _sre_c  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older interpreters
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

__all__ = ["instance_for", "invalid_instance_for", "is_valid"]

_MAX_DEPTH = 6  # past this, optional properties and recursive branches are dropped
_HARD_DEPTH = 40  # a schema with no finite instance stops here
_FALLBACK_WORDS = ("emulated", "answer", "alpha", "bravo", "charlie", "delta")
_STRING_FORMATS: dict[str, str] = {
    "date": "2025-01-15",
    "date-time": "2025-01-15T12:00:00Z",
    "time": "12:00:00Z",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uri": "https://example.com/emulated",
    "url": "https://example.com/emulated",
    "iri": "https://example.com/emulated",
    "uri-reference": "https://example.com/emulated",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
    "duration": "P1D",
}
_TYPE_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("object", ("properties", "required", "additionalProperties", "patternProperties", "minProperties")),
    ("array", ("items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems")),
    ("string", ("minLength", "maxLength", "pattern", "format")),
    ("number", ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")),
)


def instance_for(schema: Any, seed: str = "") -> Any:
    """Return a deterministic JSON value that validates against `schema`.

    Words from `seed` (e.g. the last user message) are woven into strings so the
    answer looks related to the question.
    """
    return _Filler(schema, seed).fill(schema, "$", 0)


def invalid_instance_for(schema: Any, seed: str = "", *, want_object: bool = False) -> Any:
    """Return well-formed JSON that does NOT validate against `schema`.

    `want_object` keeps the result a dict (tool inputs must be objects on the wire).
    Falls back to a valid value only for schemas that accept everything.
    """
    filler = _Filler(schema, seed)
    good = filler.fill(schema, "$", 0)
    top = filler.resolve(schema, 0) if isinstance(schema, dict) else {}
    candidates: list[Any] = []
    if isinstance(good, dict):
        required = [k for k in top.get("required", []) if k in good]
        if required:
            candidates.append({k: v for k, v in good.items() if k != required[0]})
        candidates += [{**good, key: _wrong_type(value)} for key, value in good.items()]
        candidates.append({**good, "unexpected_field": "not in the schema"})
    candidates += [{}, {"unexpected_field": True}]
    if not want_object:
        candidates += ["not the requested shape", 12345, [], None]
    for candidate in candidates:
        if not is_valid(schema, candidate):
            return candidate
    return good


def is_valid(schema: Any, instance: Any) -> bool:
    """Validate with the draft the schema declares (2020-12 by default), formats included."""
    try:
        cls = validators.validator_for(schema, default=Draft202012Validator)
        return bool(cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(instance))
    except Exception:  # unresolvable refs or a broken schema: we cannot judge, do not block
        return True


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, (int, float)):
        return "not-a-number"
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return "not-a-list"
    if isinstance(value, dict):
        return "not-an-object"
    return 0


class _Filler:
    """Walks one schema; `root` is kept for $ref resolution and sub-schema validation."""

    def __init__(self, root: Any, seed: str) -> None:
        self.root: dict[str, Any] = root if isinstance(root, dict) else {}
        self.seed = seed
        self.words = re.findall(r"[A-Za-z][A-Za-z0-9'-]{2,}", seed)[:32] or list(_FALLBACK_WORDS)
        self._context = {k: self.root[k] for k in ("$schema", "$defs", "definitions") if k in self.root}

    # -- helpers ---------------------------------------------------------------
    def _hash(self, path: str) -> int:
        return int(hashlib.sha256(f"{self.seed}\x00{path}".encode()).hexdigest()[:8], 16)

    def _valid(self, schema: Any, value: Any) -> bool:
        """Validate against a sub-schema, keeping the root's definitions reachable."""
        if not isinstance(schema, dict):
            return schema is not False
        return is_valid({**self._context, **schema}, value)

    def _deref(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and part.isdigit():
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return {}
        return node

    def resolve(self, schema: Any, hops: int) -> dict[str, Any]:
        """Follow $ref and fold allOf, so the caller sees one plain dict."""
        if schema is True or schema is None:
            return {}
        if schema is False:
            return {"not": {}}
        schema = dict(schema)
        if "$ref" in schema and hops < 32:
            target = self.resolve(self._deref(schema.pop("$ref")), hops + 1)
            schema = _merge(target, schema)
        if "allOf" in schema:
            parts = [self.resolve(s, hops + 1) for s in schema.pop("allOf")]
            for part in parts:
                schema = _merge(schema, part)
        return schema

    # -- dispatch --------------------------------------------------------------
    def fill(self, schema: Any, path: str, depth: int, variant: int = 0) -> Any:
        if depth > _HARD_DEPTH:
            return None
        original = schema
        s = self.resolve(schema, 0)
        if "const" in s:
            return s["const"]
        if "enum" in s and s["enum"]:
            options = [v for v in s["enum"] if self._valid(s, v)] or list(s["enum"])
            return options[(self._hash(path) + variant) % len(options)]
        for key in ("anyOf", "oneOf"):
            if key in s:
                return self._pick_branch(s, key, original, path, depth, variant)
        kind = self._type_of(s, depth)
        if kind == "null":
            return None
        if kind == "boolean":
            return variant % 2 == 0
        if kind in ("integer", "number"):
            return self._number(s, kind == "integer", path, variant)
        if kind == "array":
            return self._array(s, path, depth)
        if kind == "object":
            return self._object(s, path, depth)
        return self._string(s, path, variant)

    def _pick_branch(self, s: dict[str, Any], key: str, whole: Any, path: str, depth: int, variant: int) -> Any:
        base = {k: v for k, v in s.items() if k != key}
        branches = [self.resolve(b, 0) for b in s[key]]
        if depth >= _MAX_DEPTH:  # prefer a branch that ends the recursion
            branches.sort(key=lambda b: 0 if b.get("type") == "null" else 1)
        target = whole if isinstance(whole, dict) else s
        tried: list[Any] = []
        # oneOf may need a value that only one branch accepts: nudge with variants.
        for bump in range(16 if key == "oneOf" else 1):
            for branch in branches:
                candidate = self.fill(_merge(base, branch), path, depth, variant + bump)
                if self._valid(target, candidate):
                    return candidate
                tried.append(candidate)
        return tried[0] if tried else None

    def _type_of(self, s: dict[str, Any], depth: int) -> str:
        kind = s.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            if "null" in kind and (depth >= _MAX_DEPTH or not non_null):
                return "null"
            return non_null[0]
        if isinstance(kind, str):
            return kind
        for guess, keys in _TYPE_HINTS:
            if any(k in s for k in keys):
                return guess
        return "string"

    # -- scalars ---------------------------------------------------------------
    def _text(self, path: str, variant: int) -> str:
        start = self._hash(path) % len(self.words)
        words = [self.words[(start + i) % len(self.words)] for i in range(min(3, len(self.words)))]
        text = " ".join(words)
        return f"{text} {variant + 1}" if variant else text

    def _string(self, s: dict[str, Any], path: str, variant: int) -> str:
        lo, hi = int(s.get("minLength", 0)), s.get("maxLength")
        pattern = s.get("pattern")
        fmt = s.get("format")
        candidates: list[str] = []
        if pattern:
            generated = _from_pattern(pattern, variant)
            if generated is not None:
                candidates.append(generated)
        if fmt in _STRING_FORMATS:
            candidates.append(_STRING_FORMATS[fmt])
        text = self._text(path, variant)
        candidates += [text, *self.words, "abc", "ABC", "a1", "A1", "1", "x", "example"]

        def fits(value: str) -> bool:
            if len(value) < lo or (hi is not None and len(value) > hi):
                return False
            return not pattern or _search(pattern, value)

        for candidate in candidates:
            if fits(candidate):
                return candidate
        # Stretch or cut the first candidate to the length bounds (a pattern is best effort).
        out = candidates[0]
        while len(out) < lo:
            out = f"{out} {' '.join(self.words)}"
        return out if hi is None else out[: int(hi)]

    def _number(self, s: dict[str, Any], integer: bool, path: str, variant: int) -> int | float:
        keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
        rules = {k: s[k] for k in keys if k in s}
        for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(rules.get(flag), bool):  # draft-04 boolean flags
                if rules.pop(flag) and bound in rules:
                    rules[flag] = rules.pop(bound)
        rules["type"] = "integer" if integer else "number"
        lows = [rules[k] for k in ("minimum", "exclusiveMinimum") if k in rules]
        highs = [rules[k] for k in ("maximum", "exclusiveMaximum") if k in rules]
        low, high = (max(lows) if lows else None), (min(highs) if highs else None)
        target = (self._hash(path) % 9) + 1 + variant + (0 if integer else 0.5)
        candidates: list[float] = [target]
        if low is not None and high is not None:
            candidates.append((low + high) / 2)
        for edge in (low, high):
            if edge is not None:
                candidates += [edge, edge + 1, edge - 1, edge + 0.5, edge - 0.5]
        step = rules.get("multipleOf")
        if step:
            candidates = [k * step for c in candidates for k in (math.ceil(c / step), math.floor(c / step))]
        for candidate in candidates:
            value = _as_number(candidate, integer)
            if value is not None and is_valid(rules, value):
                return value
        return _as_number(target, integer) or 0

    # -- containers ------------------------------------------------------------
    def _array(self, s: dict[str, Any], path: str, depth: int) -> list[Any]:
        prefix = s.get("prefixItems") or []
        items = s.get("items", {})
        if isinstance(items, list):  # draft-07 tuple form
            prefix, items = items, s.get("additionalItems", {})
        lo, hi = int(s.get("minItems", 0)), s.get("maxItems")
        count = lo if depth >= _MAX_DEPTH else max(lo, 2)
        if hi is not None:
            count = min(count, int(hi))
        if items is False:
            count = min(count, len(prefix))
        out: list[Any] = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            value = self.fill(sub, f"{path}[{i}]", depth + 1, variant=i)
            for bump in range(1, 8):  # uniqueItems: look for a distinct variant
                if not s.get("uniqueItems") or value not in out:
                    break
                value = self.fill(sub, f"{path}[{i}]", depth + 1, variant=i + bump)
            if s.get("uniqueItems") and value in out and len(out) >= lo:
                continue
            out.append(value)
        if "contains" in s and not any(self._valid(s["contains"], v) for v in out):
            out = [self.fill(s["contains"], f"{path}[contains]", depth + 1), *out][: hi]
        return out

    def _object(self, s: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = s.get("properties", {}) or {}
        required = list(dict.fromkeys(s.get("required", [])))
        extra = s.get("additionalProperties", True)
        keys = required if depth >= _MAX_DEPTH else required + [k for k in props if k not in required]
        max_props = s.get("maxProperties")
        if max_props is not None and len(keys) > max_props:
            keys = (required + [k for k in keys if k not in required])[: max(int(max_props), len(required))]
        for key in list(keys):  # dependentRequired pulls in more keys
            for dep in s.get("dependentRequired", {}).get(key, []):
                if dep not in keys:
                    keys.append(dep)
        out: dict[str, Any] = {}
        for key in keys:
            sub = props.get(key, self._pattern_schema(s, key) or (extra if isinstance(extra, dict) else {}))
            out[key] = self.fill(sub, f"{path}.{key}", depth + 1)
        i = 0
        while len(out) < int(s.get("minProperties", 0)) and extra is not False and i < 64:
            key = f"extra_{i}"
            out.setdefault(key, self.fill(extra if isinstance(extra, dict) else {}, f"{path}.{key}", depth + 1))
            i += 1
        return out

    @staticmethod
    def _pattern_schema(s: dict[str, Any], key: str) -> Any:
        for pattern, sub in (s.get("patternProperties") or {}).items():
            if _search(pattern, key):
                return sub
        return None


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Combine two schemas that must both hold (allOf, or $ref with siblings)."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif key == "properties":
            merged = dict(out[key])
            for name, sub in value.items():
                merged[name] = {"allOf": [merged[name], sub]} if name in merged else sub
            out[key] = merged
        elif key == "required":
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key == "type":
            left = out[key] if isinstance(out[key], list) else [out[key]]
            right = value if isinstance(value, list) else [value]
            both = [t for t in left if t in right or (t == "integer" and "number" in right)]
            both += [t for t in right if t == "integer" and "number" in left and t not in both]
            out[key] = both if len(both) != 1 else both[0]
        elif key == "enum":
            out[key] = [v for v in out[key] if v in value] or value
        elif key in ("minimum", "minLength", "minItems", "minProperties", "exclusiveMinimum"):
            out[key] = max(out[key], value)
        elif key in ("maximum", "maxLength", "maxItems", "maxProperties", "exclusiveMaximum"):
            out[key] = min(out[key], value)
        elif key in ("anyOf", "oneOf") and out[key] != value:
            out["allOf"] = [*out.get("allOf", []), {key: value}]
        else:
            out[key] = value
    return out


def _as_number(value: float, integer: bool) -> int | float | None:
    if not math.isfinite(value):
        return None
    if integer:
        return int(round(value)) if float(value).is_integer() else None
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _search(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True


def _from_pattern(pattern: str, variant: int = 0) -> str | None:
    """Build a string matching a simple regex (literals, classes, repeats, groups, alternation)."""
    try:
        parsed = _sre_parse.parse(pattern)
        out = _emit(list(parsed), variant)
    except Exception:
        return None
    return out if out is not None and _search(pattern, out) else None


def _emit(items: list[tuple[Any, Any]], variant: int) -> str | None:
    out: list[str] = []
    for op, av in items:
        if op is _sre_c.LITERAL:
            out.append(chr(av))
        elif op is _sre_c.NOT_LITERAL:
            out.append("a" if chr(av) != "a" else "b")
        elif op is _sre_c.ANY:
            out.append("a")
        elif op is _sre_c.IN:
            char = _class_char(av, variant)
            if char is None:
                return None
            out.append(char)
        elif op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT, getattr(_sre_c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            count = lo if lo > 0 else min(1, hi)
            for _ in range(count):
                piece = _emit(list(sub), variant)
                if piece is None:
                    return None
                out.append(piece)
        elif op is _sre_c.SUBPATTERN:
            piece = _emit(list(av[-1]), variant)
            if piece is None:
                return None
            out.append(piece)
        elif op is _sre_c.BRANCH:
            piece = _emit(list(av[1][0]), variant)
            if piece is None:
                return None
            out.append(piece)
        elif op in (_sre_c.AT, _sre_c.ASSERT, _sre_c.ASSERT_NOT):
            continue
        else:
            return None
    return "".join(out)


def _class_char(av: list[tuple[Any, Any]], variant: int) -> str | None:
    if av and av[0][0] is _sre_c.NEGATE:
        return None  # let the caller fall back to plain candidates
    op, value = av[0]
    if op is _sre_c.LITERAL:
        return chr(value)
    if op is _sre_c.RANGE:
        lo, hi = value
        return chr(min(lo + variant, hi))
    if op is _sre_c.CATEGORY:
        return {
            _sre_c.CATEGORY_DIGIT: str(variant % 10),
            _sre_c.CATEGORY_WORD: "a",
            _sre_c.CATEGORY_SPACE: " ",
            _sre_c.CATEGORY_NOT_DIGIT: "a",
            _sre_c.CATEGORY_NOT_WORD: "-",
            _sre_c.CATEGORY_NOT_SPACE: "a",
        }.get(value)
    return None
