"""Memory merge: facts appended to memory/learned.md, idempotently."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from aios.portability.memory import (
    FACTS_SCHEMA,
    Fact,
    facts_from_output,
    merge_facts,
    normalise,
    parse_bullet,
    recent_facts,
)

from .conftest import snapshot

DAY = date(2026, 11, 23)


def fact(text: str, run: str = "r1") -> Fact:
    return Fact(text=text, source_run=run, skill="research-lead", learned_at=DAY)


def test_merge_appends_bullets_and_is_idempotent(tmp_path):
    memory = tmp_path / "memory"
    added = merge_facts(memory, [fact("Acme runs three sites."), fact("Buyers prefer phone calls.", "r2")])
    assert [f.text for f in added] == ["Acme runs three sites.", "Buyers prefer phone calls."]
    text = (memory / "learned.md").read_text()
    assert text.startswith("# Learned facts\n")
    assert text.endswith(
        "- Acme runs three sites. (source: research-lead run r1, 2026-11-23)\n"
        "- Buyers prefer phone calls. (source: research-lead run r2, 2026-11-23)\n"
    )
    before = snapshot(memory / "learned.md")
    assert merge_facts(memory, [fact("Acme runs three sites."), fact("Buyers prefer phone calls.", "r2")]) == []
    assert snapshot(memory / "learned.md") == before


def test_duplicates_are_found_by_normalised_text(tmp_path):
    memory = tmp_path / "memory"
    merge_facts(memory, [fact("Acme runs three sites.")])
    variants = [fact("  acme RUNS   three sites "), fact("Acme runs three sites!!"), fact("acme runs three sites;")]
    assert merge_facts(memory, variants) == []
    # and within one batch
    added = merge_facts(memory, [fact("New fact."), fact("new fact")])
    assert [f.text for f in added] == ["New fact."]
    assert normalise(" Hello,  World... ") == "hello, world"


def test_hand_written_bullets_are_respected(tmp_path):
    memory = tmp_path / "memory"
    memory.mkdir()
    (memory / "learned.md").write_text(
        "# Learned facts\n\n<!-- appended by aios -->\n"
        "- Operations managers answer email faster than CEOs in our market. (source: manual, 2026-11-01)\n"
    )
    assert merge_facts(memory, [fact("operations managers answer email faster than CEOs in our market")]) == []
    [manual] = recent_facts(memory, 5)
    assert manual.skill == "manual" and manual.source_run == "" and manual.learned_at == date(2026, 11, 1)
    merge_facts(memory, [fact("Peak season starts in October.")])
    facts = recent_facts(memory, 5)
    assert [f.text for f in facts][-1] == "Peak season starts in October."  # most recent last


def test_recent_facts_round_trip_and_limit(tmp_path):
    memory = tmp_path / "memory"
    originals = [fact(f"Fact number {i}.", f"run-{i}") for i in range(5)]
    merge_facts(memory, originals)
    assert recent_facts(memory, 10) == originals
    assert recent_facts(memory, 2) == originals[-2:]
    assert recent_facts(tmp_path / "nowhere", 3) == []


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=60).filter(lambda t: normalise(t) and "(" not in t), max_size=6))
def test_merge_is_idempotent_for_any_text(texts):
    with tempfile.TemporaryDirectory() as tmp:
        facts = []
        for t in texts:
            try:
                facts.append(fact(t))
            except ValueError:
                continue
        first = merge_facts(tmp, facts)
        content = (Path(tmp) / "learned.md").read_text() if first else None
        assert merge_facts(tmp, facts) == []
        if first:
            assert (Path(tmp) / "learned.md").read_text() == content
            assert [normalise(f.text) for f in recent_facts(tmp, 100)] == [normalise(f.text) for f in first]


def test_fact_text_is_one_line_and_datetime_becomes_date():
    f = Fact(text="- Two\nlines  here", skill="s", source_run="r (1)", learned_at=datetime(2026, 1, 2, 3, tzinfo=UTC))
    assert f.text == "Two lines here" and f.learned_at == date(2026, 1, 2) and f.source_run == "r 1"
    assert parse_bullet(f.bullet()) == f
    assert parse_bullet("not a bullet") is None
    assert parse_bullet("- plain bullet").text == "plain bullet"


def test_facts_schema_is_strict_compatible():
    Draft202012Validator.check_schema(FACTS_SCHEMA)
    assert FACTS_SCHEMA["additionalProperties"] is False
    assert FACTS_SCHEMA["required"] == list(FACTS_SCHEMA["properties"])
    validator = Draft202012Validator(FACTS_SCHEMA)
    assert validator.is_valid({"facts": ["a", "b"]}) and validator.is_valid({"facts": []})
    assert not validator.is_valid({"facts": ["a"], "extra": 1}) and not validator.is_valid({})
    facts = facts_from_output({"facts": ["One.", " ", 3, "Two."]}, skill="s", source_run="r", learned_at=DAY)
    assert [f.text for f in facts] == ["One.", "Two."] and facts[0].learned_at == DAY


def test_memory_cli_lists_recent_facts(tmp_path, cli):
    memory = tmp_path / "memory"
    merge_facts(memory, [fact(f"Fact {i}.", f"r{i}") for i in range(4)])
    run = cli("memory", "--limit", "2", "--root", tmp_path)
    assert run.exit_code == 0
    lines = run.stdout.splitlines()
    assert lines == [
        "2026-11-23  Fact 2.  (research-lead run r2)",
        "2026-11-23  Fact 3.  (research-lead run r3)",
    ]
    empty = cli("memory", "--root", tmp_path / "none")
    assert empty.exit_code == 0 and "no learned facts yet" in empty.stdout

