"""Usage errors read as every CLI's do (usage, hint, error; exit 2); `-h` is `--help`; `aios emulate` prints plain lines."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.cli.conftest import AIOS, aios


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["run"], "Missing argument"),
        (["run", "research-lead", "--bogus"], "No such option: --bogus"),
        (["state", "status", "--bogus"], "No such option: --bogus"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
    ],
    ids=["top-level-option", "missing-argument", "command-option", "sub-command-option", "unknown-command"],
)
def test_a_usage_error_exits_2_with_usage_and_no_class_names(home_env, project, args, message):
    result = aios(*args, env=home_env, cwd=project)
    assert result.code == 2, result.err
    assert result.err.startswith("Usage: aios") and f"Error: {message}" in result.err
    assert "NoSuchOption" not in result.err and "MissingParameter" not in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("command", [[], ["run"], ["state"], ["doctor"]], ids=["aios", "run", "state", "doctor"])
def test_dash_h_is_help(home_env, project, command):
    short = aios(*command, "-h", env=home_env, cwd=project)
    long = aios(*command, "--help", env=home_env, cwd=project)
    assert short.code == 0 == long.code, short.err
    assert short.out == long.out and "Usage: aios" in short.out


def test_emulate_prints_export_lines_a_shell_can_paste(home_env, project):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(AIOS), "emulate", "--port", str(port)],
        env=home_env | {"COLUMNS": "80"}, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    base = f"http://127.0.0.1:{port}"
    assert lines[0] == f"export ANTHROPIC_BASE_URL={base}/anthropic ANTHROPIC_API_KEY=emulator-key"
    assert lines[1] == f"export OPENAI_BASE_URL={base}/openai/v1 OPENAI_API_KEY=emulator-key"
    assert lines[2].startswith("# fault injection")
