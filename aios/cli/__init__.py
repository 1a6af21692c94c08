"""The `aios` command line: `app.py` holds the typer app, one module per command group registers on it."""
