"""Two hosts learning at once into one shared memory folder: every fact survives (merged, never overwritten)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aios.portability.memory import recent_facts
from tests.conftest import ROOT

LEARN = """
import sys
from aios.portability.memory import Fact, merge_facts
host, memory = sys.argv[1], sys.argv[2]
for i in range(40):
    merge_facts(memory, [Fact(text=f"{host} learned fact number {i}", skill="research-lead")])
"""


def test_facts_learned_on_two_hosts_at_once_are_all_kept(tmp_path: Path):
    memory = tmp_path / "memory"
    hosts = [
        subprocess.Popen([sys.executable, "-c", LEARN, host, str(memory)], cwd=ROOT)
        for host in ("host-a", "host-b")
    ]
    assert [h.wait(timeout=120) for h in hosts] == [0, 0]
    texts = {f.text for f in recent_facts(memory, limit=1000)}
    assert texts == {f"{host} learned fact number {i}" for host in ("host-a", "host-b") for i in range(40)}
