"""Context assembly: same text for every provider, stable order, a size guard."""

import pytest

from aios.skills.prompt import build_prompt
from aios.skills.prompt_context import assemble_context
from aios.errors import ConfigError


def project(tmp_path, knowledge, memory):
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "memory").mkdir()
    for name, text in knowledge.items():
        (tmp_path / "knowledge" / name).write_text(text)
    for name, text in memory.items():
        (tmp_path / "memory" / name).write_text(text)
    return tmp_path


def test_knowledge_then_memory_in_name_order(tmp_path):
    home = project(tmp_path, {"b.md": "B", "a.md": "A"}, {"learned.md": "- fact"})
    context = assemble_context(home, 10_000)
    assert context.files == ["knowledge/a.md", "knowledge/b.md", "memory/learned.md"]
    assert context.text.index("A") < context.text.index("B") < context.text.index("- fact")


def test_oversized_knowledge_is_a_one_line_error_naming_the_largest_file(tmp_path):
    home = project(tmp_path, {"small.md": "x", "huge.md": "y" * 500}, {})
    with pytest.raises(ConfigError) as info:
        assemble_context(home, 100)
    assert "knowledge/huge.md" in str(info.value) and "\n" not in str(info.value)


def test_memory_is_trimmed_oldest_first_to_fit(tmp_path):
    facts = "\n".join(f"- fact number {i:03d}" for i in range(50))
    home = project(tmp_path, {"id.md": "identity"}, {"learned.md": "# Learned\n" + facts})
    context = assemble_context(home, 400)
    assert context.trimmed_memory_lines > 0
    assert "fact number 049" in context.text and "fact number 000" not in context.text
    assert len(context.text) <= 400 + 100


def test_prompt_is_identical_whatever_the_provider(tmp_path):
    home = project(tmp_path, {"id.md": "We are Acme."}, {})
    system, user = build_prompt("Do the thing.", assemble_context(home, 1000), {"b": 2, "a": 1})
    assert "We are Acme." in system and "Do the thing." in system
    assert user.index('"a"') < user.index('"b"'), "inputs are serialised in a stable order"
