"""The fault schedule: tables of fault modes (a new mode is one line) and the outages drawn from a seed.

A mode the emulator does not offer (yet) is skipped and named in the report, never sent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# Per-request LLM faults: (emulator mode, weight, rule parameters). The ticker puts one on a random
# model for a few requests at a time. Read timeouts need AIOS_READ_TIMEOUT below the delays here.
LLM_FAULTS: list[tuple[str, float, dict[str, Any]]] = [
    ("overloaded", 3, {}),  # 529 (OpenAI: 503 overloaded)
    ("error_500", 1, {}),
    ("error_502", 1, {}),
    ("unavailable", 1, {}),
    ("gateway_timeout", 1, {}),
    ("rate_limited", 2, {"retry_after": 0.5}),  # 429 with retry-after
    ("refused", 1, {}),  # connection refused
    ("hang", 1, {"delay": 6.0}),  # black hole: held until the client's read timeout
    ("slow", 1, {"delay": 5.0}),  # read timeout (answer later than the client waits)
    ("cut", 1, {}),  # 200 headers, half the body, connection dropped
    ("malformed_json", 1, {}),
    ("truncated_json", 1, {}),
    ("empty_body", 1, {}),
    ("schema_invalid", 2, {}),  # a valid reply whose content breaks the skill's contract
]

# Whole-provider outage modes for Claude (the '*' rule while an outage lasts).
OUTAGE_MODES: list[str] = ["overloaded", "unavailable", "hang", "refused"]

# State backend faults (Sheets and Airtable emulators): (mode, weight, parameters). `down` for longer
# than the retry bound sends writes to the journal.
STATE_FAULTS: list[tuple[str, float, dict[str, Any]]] = [
    ("rate_limited", 4, {"times": 3, "retry_after": 0.3}),
    ("error_500", 1, {"times": 2}),
    ("lost", 1, {"times": 1}),  # write applied, answer lost: the retry must not duplicate it
    ("down", 1, {"seconds": (4.0, 8.0)}),  # longer than AIOS_STATE_RETRY_MAX_TOTAL
]


def offered(table: list[tuple[str, float, dict[str, Any]]], modes: set[str] | tuple[str, ...]) -> tuple[list, list[str]]:
    """The rows whose mode the emulator offers, and the names of those it does not."""
    return [row for row in table if row[0] in modes], [row[0] for row in table if row[0] not in modes]


@dataclass
class Outage:
    at_run: int  # starts once this many runs were submitted
    seconds: float
    announced: bool  # the status page says so
    mode: str


@dataclass
class SoakPlan:
    """Everything random about one soak, drawn from its seed up front."""

    seed: int
    runs: int
    outages: list[Outage] = field(default_factory=list)
    kills_every: int = 100
    restart_at: int = 0  # Prefect server restart once this many runs were submitted

    @classmethod
    def draw(cls, seed: int, runs: int, outage_seconds: tuple[float, float], outages: int, outage_modes: list[str]) -> SoakPlan:
        rng = random.Random(seed)
        spacing = runs / (outages + 1)
        plan = cls(seed=seed, runs=runs, restart_at=runs // 2 + rng.randrange(max(1, runs // 10)))
        for i in range(outages):
            plan.outages.append(
                Outage(
                    at_run=int(spacing * (i + 1)),
                    seconds=round(rng.uniform(*outage_seconds), 1),
                    announced=rng.random() < 0.7,
                    mode=rng.choice(outage_modes),
                )
            )
        return plan
