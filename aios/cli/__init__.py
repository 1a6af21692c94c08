"""The `aios` command line: `app.py` holds the typer app and registers one module per command group.

Prefect reads its settings when it is first imported, so the environment is prepared here, before any
command module loads. Command modules import Prefect, the flows and the emulators inside the command
functions: that keeps `aios --help` and one-line errors fast to start.
"""

from aios.config.bootstrap import prepare_environment

prepare_environment()
