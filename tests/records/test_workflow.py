"""The pure rules of record workflows: which records, which step next, what an answer may write."""

from __future__ import annotations

import pytest

from aios.core.workflow import (
    Progress,
    Selection,
    StepDone,
    UndeclaredWrite,
    WritePlan,
    first_unfinished,
    parse_fields,
    parse_names,
)

STEPS = ("research", "qualify", "draft")


def done(output: dict) -> StepDone:
    return StepDone(output=output, provider="anthropic", model="claude-opus-5-5", run_id="r1")


def test_source_names_a_table_and_equality_conditions():
    sel = Selection.parse("leads where status = new and owner = 'Dana Reyes'")
    assert (sel.table, sel.where) == ("leads", {"status": "new", "owner": "Dana Reyes"})
    assert str(sel) == "leads where status = new and owner = Dana Reyes"
    assert sel.matches({"status": "new", "owner": "Dana Reyes"}) and not sel.matches({"status": "qualified", "owner": "Dana Reyes"})


def test_a_source_without_where_is_the_whole_table():
    assert Selection.parse("leads") == Selection(table="leads")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("leads where status", "'status' is not of the form field = value"),
        ("leads where ", "has nothing after 'where'"),
        ("leads where status = new and status = old", "field 'status' is named twice"),
        ("/etc/passwd where a = b", "does not start with a table name"),
    ],
)
def test_a_broken_source_says_what_is_wrong(text, problem):
    with pytest.raises(ValueError, match=problem):
        Selection.parse(text)


def test_steps_and_fields_parse_from_comma_separated_strings():
    assert parse_names("research, qualify ,draft", "step") == STEPS
    assert parse_fields("status, fit, next_step") == ("status", "fit", "next_step")
    with pytest.raises(ValueError, match="named twice"):
        parse_names("research, research", "step")
    with pytest.raises(ValueError, match="'version' cannot be written"):
        parse_fields("status, version")


def test_the_next_step_is_the_first_without_a_checkpoint():
    assert first_unfinished(STEPS, []) == "research"
    assert first_unfinished(STEPS, ["research"]) == "qualify"
    assert first_unfinished(STEPS, ["research", "draft"]) == "qualify", "a gap is filled before going on"
    assert first_unfinished(STEPS, STEPS) is None


def test_progress_resumes_after_its_finished_steps_and_merges_their_outputs_in_order():
    progress = Progress(skill="research-lead", table="leads", record="acme")
    progress.steps["research"] = done({"summary": "robots", "company": "Acme"})
    assert progress.next_step(STEPS) == "qualify"
    progress.steps["qualify"] = done({"fit": "strong", "summary": "robots, revised"})
    assert progress.answer(STEPS) == {"company": "Acme", "summary": "robots, revised", "fit": "strong"}
    assert Progress.key_for("research-lead", "leads", "acme") == "research-lead/leads/acme"


PLAN = WritePlan(table="leads", updates=("status", "fit", "next_step"), steps=STEPS)
LEAD = {"company": "Acme", "status": "new", "notes": "met at the fair"}


def test_an_answer_writes_only_its_declared_fields_and_the_step_columns():
    after = PLAN.answered(LEAD, {"status": "qualified", "fit": "strong", "next_step": "call", "email_body": "Hi", "company": "ACME"})
    assert after == {
        "company": "Acme",  # the answer's `company` is not declared: the user's value stays
        "notes": "met at the fair",
        "status": "qualified",
        "fit": "strong",
        "next_step": "call",
        "step_research": "done",
        "step_qualify": "done",
        "step_draft": "done",
    }


def test_a_step_marks_its_own_column():
    assert PLAN.step_marked(LEAD, "research") == {**LEAD, "step_research": "done"}


def test_a_run_cannot_write_an_undeclared_table_or_field():
    with pytest.raises(UndeclaredWrite, match="table 'customers' is not the skill's source table 'leads'"):
        PLAN.checked("customers", LEAD, LEAD)
    with pytest.raises(UndeclaredWrite, match="field\\(s\\) notes of table 'leads' are not declared"):
        PLAN.checked("leads", LEAD, {**LEAD, "notes": ""})


def test_lists_in_an_answer_become_one_cell():
    plan = WritePlan(table="leads", updates=("open_questions",), steps=())
    assert plan.answered({}, {"open_questions": ["budget?", "timeline?"]}) == {"open_questions": "budget?; timeline?"}


def test_a_reading_skill_gets_the_newest_records_first_with_key_and_time():
    from datetime import UTC, datetime

    from aios.core.workflow import read_input

    older, newer = datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 18, tzinfo=UTC)
    rows = [("acme", older, {"status": "qualified"}), ("bolt", newer, {"status": "qualified", "score": 70})]
    assert read_input(rows) == [
        {"key": "bolt", "updated_at": "2026-11-18T00:00:00+00:00", "status": "qualified", "score": 70},
        {"key": "acme", "updated_at": "2026-11-16T00:00:00+00:00", "status": "qualified"},
    ]
    assert [r["key"] for r in read_input(rows, limit=1)] == ["bolt"]
