"""Local emulators that speak the real wire protocols (Anthropic, OpenAI, Statuspage) with fault injection.

Start them with `aios emulate`, `python -m aios.emulators.server`, or `running_emulator()` in tests.
"""
