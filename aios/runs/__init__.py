"""Skill runs: the record one run leaves in the state store, and what writes it when the run ends."""
