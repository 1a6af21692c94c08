"""`aios drill --keep`: the verdict first, then the UI stays up until a signal stops everything it started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def processes_with(marker: str) -> list[int]:
    """Processes whose environment carries `marker` (every process the drill starts inherits it)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    found.append(int(entry))
    return found


def test_sigterm_to_drill_keep_stops_its_stack_and_removes_its_folders(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    marker = f"TMPDIR={scratch}"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AIOS_HOME": str(ROOT), "TMPDIR": str(scratch)}
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        drill = subprocess.Popen(
            [sys.executable, "-m", "aios.cli", "drill", "--keep", "--json", "--scenario", "model-down"],
            cwd=ROOT, env=env, stdout=stdout, stderr=stderr, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while "Prefect UI of the drill" not in err.read_text() and drill.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        assert drill.poll() is None, f"the drill exited before keeping its UI up:\n{err.read_text()[-2000:]}"
        verdict = json.loads(out.read_text())  # printed before the UI line, not after the signal
        assert verdict["passed"], verdict
        started = [pid for pid in processes_with(marker) if pid != drill.pid]
        assert len(started) >= 3, f"expected the emulator, the Prefect server and a worker, found pids {started}"
        assert [p.name for p in scratch.iterdir() if p.name.startswith("aios-stack-")], "the stack's folder exists while kept"

        drill.send_signal(signal.SIGTERM)
        code = drill.wait(120)
    finally:
        if drill.poll() is None:
            os.killpg(drill.pid, signal.SIGKILL)
            drill.wait()

    assert code == 0, f"exit {code}:\n{err.read_text()[-2000:]}"
    left = processes_with(marker)
    assert not left, f"still running after SIGTERM: {[Path(f'/proc/{p}/cmdline').read_bytes()[:120] for p in left]}"
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("aios-")], list(scratch.iterdir())
