"""Fire drills: cut Claude off, run every skill, check each outcome against its triage class, bring
Claude back, and check the deferred queue drains exactly once.

`scenarios` holds the registry of scenarios (values: a name and the coroutine that plays it),
`runner` the drill's moves against a running stack, `report` the verdict and its one renderer.
"""
