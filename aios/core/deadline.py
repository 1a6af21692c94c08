"""A skill's `metadata.deadline` bounds its whole run, not each model call: every chain gets what is left.

An agent CLI may take minutes, so a run that waited on one target must not grant the next chain
a fresh budget. The answer's chain gets the time left when it starts (with none left it calls
nobody and says the deadline passed); memory extraction after the answer gets what the answer
left, or is skipped with a reason when nothing is left. The answer is kept either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aios.core.policy import FallbackPolicy, parse_deadline


class RunDeadline:
    """One run's deadline, counted on `clock` from when the run started."""

    def __init__(self, deadline: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.deadline = deadline
        self.seconds = parse_deadline(deadline) if deadline is not None else None
        self.clock = clock
        self.started = clock()

    def left(self) -> float | None:
        """Seconds left (zero or less: passed), or None: no deadline."""
        if self.seconds is None:
            return None
        return self.seconds - (self.clock() - self.started)

    def bound(self, policy: FallbackPolicy) -> FallbackPolicy:
        """The policy for a chain starting now: its budget is what the run has left (maybe nothing)."""
        left = self.left()
        if left is None:
            return policy
        return policy.model_copy(update={"deadline": self.deadline, "left": max(left, 0.0)})

    def after_answer(self, policy: FallbackPolicy) -> tuple[FallbackPolicy | None, str | None]:
        """Memory extraction's policy, or None and why it is skipped: the answer used up the deadline."""
        left = self.left()
        if left is not None and left <= 0:
            return None, f"skipped: deadline {self.deadline} passed with the answer"
        return self.bound(policy), None
