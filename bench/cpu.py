"""CPU seconds of a process, read from /proc: what the soak's and the drain's per-run CPU figures are made of."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU of one process (all its threads), or of its exited children it waited for; 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    at = 13 if children else 11  # cutime, cstime / utime, stime (fields 16-17 / 14-15 of proc(5), counted from `state`)
    return (int(fields[at]) + int(fields[at + 1])) / os.sysconf("SC_CLK_TCK")
