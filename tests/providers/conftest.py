"""One emulator subprocess for the provider tests (no Prefect server: the adapters do not need one)."""

from tests.helpers import control, emulator  # noqa: F401 - the folder's emulator process, reset around every test
