"""A fresh clone installs from the package registry alone: no dependency points at this machine.

A `prefect-redis @ file:///tmp/...` pin once broke every fresh clone while every existing .venv kept
passing; these tests read the dependency files and the launch scripts themselves, so such a pin fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement

ROOT = Path(__file__).resolve().parents[1]
PINNED = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?==[A-Za-z0-9.+!-]+$")
LAUNCH_SCRIPTS = ("scripts/bootstrap", "scripts/test", "scripts/system-deps", "bin/aios", ".ci/run")
# Absolute paths a launch script may name: the same on every Debian machine, not this one's layout.
SYSTEM_PATHS = ("/usr/bin/env", "/dev/null", "/etc/postgresql")


def requirement_problem(spec: str) -> str | None:
    """Why a dependency spec would not install from the registry on another machine, or None."""
    text = spec.split(" #", 1)[0].strip()
    if "file:" in text:
        return "names a file URL"
    if text.startswith("-"):
        return "is a pip option (-e, --find-links, --index-url ...), not a name"
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return "is not a requirement (a bare path?)"
    if requirement.url:
        return f"is a direct reference ({requirement.url})"
    return None


def constraint_problem(line: str) -> str | None:
    """A constraints.txt line must be exactly `name==version`."""
    return requirement_problem(line) or (None if PINNED.match(line) else "is not `name==version`")


def pyproject_specs() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    optional = [spec for group in project.get("optional-dependencies", {}).values() for spec in group]
    return [*data["build-system"]["requires"], *project["dependencies"], *optional]


def requirement_files() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in tracked if re.search(r"(^|/)requirements[^/]*\.(txt|in)$", name)]


def lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize(
    "spec",
    [
        "prefect-redis @ file:///tmp/wheels/prefect_redis-0.3.0-py3-none-any.whl",
        "prefect-redis @ /tmp/prefect_redis-0.3.0-py3-none-any.whl",
        "prefect-redis @ ./wheels/prefect_redis.whl",
        "./wheels/prefect_redis-0.3.0-py3-none-any.whl",
        "/tmp/prefect_redis",
        "-e ../prefect-redis",
        "--find-links /tmp/wheels",
        "--find-links=file:///tmp/wheels",
        "prefect-redis @ https://example.invalid/prefect_redis.whl",
    ],
)
def test_a_local_or_direct_dependency_is_refused(spec):
    assert requirement_problem(spec) is not None
    assert constraint_problem(spec) is not None


@pytest.mark.parametrize("line", ["prefect-redis>=0.3", "prefect-redis", "prefect-redis==0.3.0; python_version>'3'"])
def test_a_constraint_that_is_not_an_exact_pin_is_refused(line):
    assert constraint_problem(line) is not None


def test_pyproject_dependencies_install_from_the_registry():
    problems = {spec: requirement_problem(spec) for spec in pyproject_specs()}
    assert not {spec: why for spec, why in problems.items() if why}
    assert "file:" not in (ROOT / "pyproject.toml").read_text()


def test_every_constraints_line_is_name_equals_version():
    found = lines(ROOT / "constraints.txt")
    assert found, "constraints.txt pins the whole environment"
    problems = {line: constraint_problem(line) for line in found}
    assert not {line: why for line, why in problems.items() if why}


def test_requirement_files_install_from_the_registry():
    problems = {
        f"{path.relative_to(ROOT)}: {line}": requirement_problem(line) for path in requirement_files() for line in lines(path)
    }
    assert not {where: why for where, why in problems.items() if why}


def absolute_paths(script: str) -> list[str]:
    """Absolute paths written in a shell script (not `$var/sub`, `"$(cmd)"/..`, or `.venv/bin/...`)."""
    return re.findall(r"(?<![\w.$})\"'-])/[A-Za-z_][\w.+-]*(?:/[\w.+-]+)*", script)


def test_the_path_finder_sees_a_machine_path():
    assert absolute_paths('cd /work/wt/aios && "$root/.venv/bin/aios"\nPY=/usr/local/bin/python3.11') == [
        "/work/wt/aios", "/usr/local/bin/python3.11"]


@pytest.mark.parametrize("name", LAUNCH_SCRIPTS)
def test_launch_scripts_name_no_path_of_this_machine(name):
    text = (ROOT / name).read_text()
    machine = [p for p in absolute_paths(text) if not p.startswith(SYSTEM_PATHS)]
    assert not machine, f"{name} names {machine}: they exist only on this machine"
    assert str(ROOT) not in text and str(Path.home()) + "/" not in text


def test_the_installed_environment_is_consistent():
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_installed_versions_are_the_pinned_ones():
    wrong = {}
    for line in filter(PINNED.match, lines(ROOT / "constraints.txt")):  # other lines fail the test above
        name, version = line.split("==")
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a constraint only bounds what is installed; pip check covers what is required
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, "installed differs from constraints.txt (pinned, installed): " + repr(wrong)

