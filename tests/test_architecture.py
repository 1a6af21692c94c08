"""The architecture holds: aios never imports the project's flows, and its modules import no cycle.

Read from the source with `ast` (nothing is imported), so an import placed inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aios"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file; relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]  # `from aios import x` may name a module
    return found


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_of_aios_imports_the_projects_flows():
    upward = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in modules().values()
        for line, name in imports(path)
        if name == "flows" or name.startswith("flows.")
    ]
    assert not upward, "aios must resolve the project's flows by entrypoint (aios/config/entrypoints.py):\n" + "\n".join(upward)


def test_aios_modules_import_no_cycle_at_import_time():
    """Module-level imports only: an import inside a function runs after every module has loaded."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        graph[name] = {target for _, target in imports(path, top_level_only=True) if target in known and target != name}
    cycles = _cycles(graph)
    assert not cycles, "aios modules that import each other in a cycle:\n" + "\n".join(", ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_a_projects_flow_is_found_by_entrypoint_from_the_project_folder(tmp_path, monkeypatch):
    import sys

    from aios.config.entrypoints import Entrypoint

    (tmp_path / "projectflows").mkdir()
    (tmp_path / "projectflows" / "__init__.py").write_text("")
    (tmp_path / "projectflows" / "hello.py").write_text("def greet():\n    return 'hello from the project'\n")
    monkeypatch.setenv("AIOS_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    try:
        assert Entrypoint("projectflows.hello", "greet").load()() == "hello from the project"
    finally:
        for name in ("projectflows.hello", "projectflows"):
            sys.modules.pop(name, None)


def test_a_project_without_the_flow_is_one_line_naming_the_folder_and_the_entrypoint(tmp_path, monkeypatch):
    import sys

    import pytest

    from aios.config.entrypoints import Entrypoint
    from aios.errors import ConfigError

    (tmp_path / "projectflows2").mkdir()
    (tmp_path / "projectflows2" / "__init__.py").write_text("")
    monkeypatch.setenv("AIOS_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        with pytest.raises(ConfigError) as missing_module:
            Entrypoint("projectflows2.absent", "flow").load()
        with pytest.raises(ConfigError) as missing_attr:
            Entrypoint("projectflows2", "flow").load()
    finally:
        sys.modules.pop("projectflows2", None)
    assert str(missing_module.value) == f"{tmp_path}: the project has no flow projectflows2.absent:flow (projectflows2/absent.py not found)"
    assert str(missing_attr.value) == f"{tmp_path}: the project has no flow projectflows2:flow (module projectflows2 has no 'flow')"
