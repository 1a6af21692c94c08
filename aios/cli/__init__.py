"""The `aios` command line: `app.py` holds the typer app and registers one module per command group.

Prefect reads its settings when it is first imported, so the environment is prepared here, before any
command module loads. Command modules import Prefect, the flows and the emulators inside the command
functions: that keeps `aios --help` and one-line errors fast to start. A plain `aios run SKILL` goes to
the kept server's warm runner when one is up (aios/runs/runner.py) before anything heavy is imported.
"""

from aios.runs.runner import fast_run_or_continue

fast_run_or_continue()  # `aios run SKILL` on the kept server's warm runner: exits here, before any heavy import

from aios.config.bootstrap import prepare_environment  # noqa: E402

prepare_environment()
