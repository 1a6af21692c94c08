"""`python -m aios.cli`: the same as the `aios` command."""

from aios.cli.app import main

main()
