"""The comparison rules of `aios validate`, table by table: pure functions, no server."""

from __future__ import annotations

import copy

import pytest

from aios.errors import ConfigError
from aios.validation.compare import CompareRule, compare_answers
from aios.validation.matrix import Matrix, RunSample, build_cells, parse_targets

SCHEMA = {
    "type": "object",
    "$defs": {"Fit": {"type": "string", "enum": ["strong", "possible", "poor"]}},
    "properties": {
        "company": {"type": "string"},
        "fit": {"$ref": "#/$defs/Fit"},
        "score": {"type": "integer"},
        "ratio": {"type": "number"},
        "tier": {"type": "integer", "enum": [100, 105]},
        "priority": {"type": "string", "enum": ["high", "medium", "low"]},
        "summary": {"type": "string"},
        "urgent": {"type": "boolean"},
        "owner": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "stage": {"anyOf": [{"const": "new"}, {"const": "won"}, {"type": "null"}]},
        "open_questions": {"type": "array", "items": {"type": "string"}},
        "lead": {"type": "object", "properties": {"fit": {"$ref": "#/$defs/Fit"}, "note": {"type": "string"}}},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"kind": {"enum": ["a", "b"]}, "text": {"type": "string"}}},
        },
    },
}

BASE = {
    "company": "Acme Corp",
    "fit": "strong",
    "score": 80,
    "ratio": 0.5,
    "tier": 100,
    "priority": "high",
    "summary": "A good fit.",
    "urgent": True,
    "owner": "Dana",
    "stage": "new",
    "open_questions": ["budget?", "timeline?"],
    "lead": {"fit": "strong", "note": "met at a fair"},
    "items": [{"kind": "a", "text": "x"}, {"kind": "b", "text": "y"}],
}


def variant(**changes):
    out = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = out
        *parents, last = dotted.split("__")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return out


DELETE = object()

# (case, other answer, rule, tolerance, expected [(path, kind)])
CASES = [
    ("identical", variant(), None, 0.1, []),
    ("enum differs", variant(fit="poor"), None, 0.1, [("fit", "value")]),
    ("free text is not compared", variant(summary="Looks promising.", company="ACME"), None, 0.1, []),
    ("number within 10%", variant(score=85), None, 0.1, []),
    ("number outside 10%", variant(score=60), None, 0.1, [("score", "number")]),
    ("float within", variant(ratio=0.54), None, 0.1, []),
    ("zero tolerance", variant(score=81), None, 0.0, [("score", "number")]),
    ("numbers in an enum are exact", variant(tier=105), None, 0.1, [("tier", "value")]),
    ("boolean differs", variant(urgent=False), None, 0.1, [("urgent", "value")]),
    ("list length differs", variant(open_questions=["budget?"]), None, 0.1, [("open_questions", "length")]),
    ("same length, other words", variant(open_questions=["who decides?", "when?"]), None, 0.1, []),
    ("missing key", variant(priority=DELETE), None, 0.1, [("priority", "keys")]),
    ("extra key", {**variant(), "extra": 1}, None, 0.1, [("extra", "keys")]),
    ("type differs", variant(score="80"), None, 0.1, [("score", "type")]),
    ("null vs string", variant(owner=None), None, 0.1, [("owner", "type")]),
    ("const through anyOf", variant(stage="won"), None, 0.1, [("stage", "value")]),
    ("nested enum through $ref", variant(lead__fit="poor"), None, 0.1, [("lead.fit", "value")]),
    ("list item enum", variant(items__1__kind="a"), None, 0.1, [("items[1].kind", "value")]),
    ("only fit,priority: score ignored", variant(score=10, urgent=False), "fit,priority", 0.1, []),
    ("only fit,priority: fit compared", variant(fit="possible"), "fit,priority", 0.1, [("fit", "value")]),
    ("only: missing listed key", variant(priority=DELETE), "fit,priority", 0.1, [("priority", "keys")]),
    ("only: unlisted missing key ignored", variant(summary=DELETE), "fit,priority", 0.1, []),
    ("none compares nothing", variant(fit="poor", score=1, urgent=False), "none", 0.1, []),
    ("all minus score", variant(score=10), "all,-score", 0.1, []),
    ("minus alone means all minus", variant(score=10, fit="poor"), "-score", 0.1, [("fit", "value")]),
    ("own tolerance", variant(score=60), "score~30%", 0.1, []),
    ("own tolerance, only that field", variant(score=60, fit="poor"), "score~0.3", 0.1, []),
    ("all with a tolerance", variant(score=60, fit="poor"), "all,score~30%", 0.1, [("fit", "value")]),
    ("named free text compared loosely", variant(company="  acme   CORP "), "company", 0.1, []),
    ("named free text differs", variant(company="Globex"), "company", 0.1, [("company", "value")]),
    ("nested path only", variant(lead__fit="poor", fit="poor"), "lead.fit", 0.1, [("lead.fit", "value")]),
    ("list path only", variant(items__0__kind="b", fit="poor"), "items.kind", 0.1, [("items[0].kind", "value")]),
    ("excluded nested field", variant(lead__fit="poor"), "-lead.fit", 0.1, []),
]


@pytest.mark.parametrize(("other", "rule", "tolerance", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_compare_answers(other, rule, tolerance, expected):
    found = compare_answers(BASE, other, SCHEMA, rule, tolerance)
    assert [(d.path, d.kind) for d in found] == expected


def test_comparison_without_a_schema_still_checks_structure_numbers_and_booleans():
    a = {"x": 1, "flag": True, "label": "one"}
    assert compare_answers(a, {"x": 1.05, "flag": True, "label": "two"}) == []
    found = compare_answers(a, {"x": 2, "flag": False, "label": "one"})
    assert [(d.path, d.kind) for d in found] == [("x", "number"), ("flag", "value")]
    assert str(found[0]).startswith("x: 1 vs 2")


def test_zero_and_negative_numbers():
    assert compare_answers({"n": 0}, {"n": 0.0}) == []
    assert compare_answers({"n": -100}, {"n": -95}) == []
    assert [d.kind for d in compare_answers({"n": 0}, {"n": 0.001})] == ["number"]


PARSE = [
    (None, "all", (), (), ()),
    ("", "all", (), (), ()),
    ("all", "all", (), (), ()),
    ("*", "all", (), (), ()),
    ("none", "none", (), (), ()),
    (" None ", "none", (), (), ()),
    ("fit,priority", "only", ("fit", "priority"), (), ()),
    (" fit , priority, fit ", "only", ("fit", "priority"), (), ()),
    ("all,-summary", "all", (), ("summary",), ()),
    ("-summary,-next_step", "all", (), ("summary", "next_step"), ()),
    ("score~25%", "only", ("score",), (), (("score", 0.25),)),
    ("score~0.25", "only", ("score",), (), (("score", 0.25),)),
    ("all,score~5%", "all", ("score",), (), (("score", 0.05),)),
    ("lead.fit,items.kind", "only", ("lead.fit", "items.kind"), (), ()),
]


@pytest.mark.parametrize(("text", "mode", "fields", "exclude", "tolerances"), PARSE)
def test_parse_rule(text, mode, fields, exclude, tolerances):
    rule = CompareRule.parse(text)
    assert (rule.mode, rule.exclude, rule.tolerances) == (mode, exclude, tolerances)
    if mode == "only":
        assert rule.fields == fields


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("none,fit", "cannot be combined"),
        ("fit,-summary", "not both"),
        ("-score~5%", "takes no tolerance"),
        ("fit priority", "is not a field path"),
        ("a..b", "is not a field path"),
        ("score~abc", "is not a field path"),
    ],
)
def test_malformed_rules_are_one_line_config_errors(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        CompareRule.parse(text, where="skills/x/SKILL.md: metadata.compare")
    assert str(info.value).startswith("skills/x/SKILL.md: metadata.compare: ")
    assert "\n" not in str(info.value)


def test_unknown_fields_are_found_in_the_contract():
    assert CompareRule.parse("fit,lead.fit,items.kind,score~5%").unknown_fields(SCHEMA) == []
    assert CompareRule.parse("fit,nope,lead.nope").unknown_fields(SCHEMA) == ["nope", "lead.nope"]
    assert CompareRule.parse("all,-missing").unknown_fields(SCHEMA) == ["missing"]


def ok(output, ms=100.0, tokens=(10, 20)):
    return RunSample(ok=True, output=output, ms=ms, input_tokens=tokens[0], output_tokens=tokens[1])


def failed(error="invalid_answer", ms=50.0):
    return RunSample(ok=False, error_class=error, message="bad", ms=ms)


def test_cells_agree_when_every_answer_agrees():
    cells = build_cells(
        "research-lead",
        {"anthropic:a": [ok(BASE), ok(variant(summary="x"))], "openai:b": [ok(variant(score=84), ms=300, tokens=(12, 30))] * 2},
        SCHEMA,
    )
    assert [c.ok for c in cells] == [True, True]
    assert cells[1].reference == "anthropic:a" and cells[1].pass_rate == 1.0
    assert (cells[1].mean_latency_ms, cells[1].tokens_in, cells[1].tokens_out) == (300.0, 12, 30)
    assert Matrix(cells=cells).ok


def test_a_disagreeing_enum_fails_the_cell_and_the_matrix():
    cells = build_cells("research-lead", {"anthropic:a": [ok(BASE)], "openai:b": [ok(variant(fit="poor"))]}, SCHEMA)
    assert cells[0].ok and not cells[1].ok
    assert cells[1].disagreements == 1 and cells[1].problems() == ["fit: 'strong' vs 'poor'"]
    matrix = Matrix(cells=cells)
    out = matrix.to_json()
    assert out["ok"] is False and set(out) == {"cells", "ok"}
    assert out["cells"][1]["disagreements"] == 1 and out["cells"][1]["disagreement_details"] == ["fit: 'strong' vs 'poor'"]
    assert matrix.table_rows()[1]["status"] == "FAIL"


def test_the_compare_rule_decides_what_must_agree():
    samples = {"anthropic:a": [ok(BASE)], "openai:b": [ok(variant(fit="poor"))]}
    assert all(c.ok for c in build_cells("s", samples, SCHEMA, "priority"))
    cells = build_cells("s", samples, SCHEMA, "none")
    assert all(c.ok and c.reference is None and c.compare == "none" for c in cells)


def test_a_failed_run_keeps_its_error_class_and_fails_the_cell():
    cells = build_cells("s", {"anthropic:a": [ok(BASE), ok(BASE)], "openai:b": [ok(BASE), failed()]}, SCHEMA)
    bad = cells[1]
    assert not bad.ok and bad.pass_rate == 0.5 and bad.errors == ["invalid_answer"]
    assert bad.mean_latency_ms == 75.0 and bad.tokens_in == 10  # tokens: mean over answered runs
    assert bad.problems() == ["1/2 run(s) failed: invalid_answer"]


def test_the_reference_moves_to_the_next_target_when_the_first_never_answered():
    cells = build_cells("s", {"anthropic:a": [failed("overloaded")], "openai:b": [ok(BASE)], "openai:c": [ok(variant(fit="poor"))]}, SCHEMA)
    assert [c.reference for c in cells] == ["openai:b"] * 3
    assert [c.ok for c in cells] == [False, True, False]
    assert cells[0].tokens_in is None and cells[0].errors == ["overloaded"]


def test_no_answer_anywhere_fails_every_cell_and_an_empty_matrix_is_not_ok():
    cells = build_cells("s", {"anthropic:a": [failed()], "openai:b": [failed("timeout")]}, SCHEMA)
    assert [c.ok for c in cells] == [False, False]
    assert not Matrix().ok


def test_matrix_round_trips_through_the_flow_result():
    cells = build_cells("s", {"anthropic:a": [ok(BASE)], "openai:b": [ok(variant(fit="poor"))]}, SCHEMA)
    data = Matrix(cells=cells).model_dump(mode="json")
    again = Matrix.model_validate(data)
    assert again.to_json() == Matrix(cells=cells).to_json()


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        (None, []),
        ("", []),
        ("anthropic:claude-x, openai:gpt-y", ["anthropic:claude-x", "openai:gpt-y"]),
        (["anthropic:a,openai:b", "openai:b"], ["anthropic:a", "openai:b"]),
    ],
)
def test_parse_targets(specs, expected):
    assert parse_targets(specs) == expected


def test_parse_targets_rejects_a_spec_without_a_model():
    with pytest.raises(ConfigError, match="'openai' is not of the form provider:model"):
        parse_targets("anthropic:a,openai")
