"""Thin adapters from the fallback loop to the official SDKs.

Each SDK is imported when its adapter is first built (anthropic ~1.6 s, openai ~0.7 s of CPU on a
small machine), so a process that never calls a provider never pays for it.
"""

from __future__ import annotations

from aios.core.fallback import Reply
from aios.core.policy import Target, Timeouts
from aios.errors import ConfigError
from aios.providers.agent_cli import cli_adapter
from aios.providers.base import ModelRequest, Provider
from aios.config.settings import AGENT_CLI_PROVIDERS, Settings


class Providers:
    """One adapter per configured endpoint, built lazily and shared by all runs of a process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._adapters: dict[str, Provider] = {}

    def adapter(self, name: str) -> Provider:
        adapter = self._adapters.get(name)
        if adapter is None:
            endpoint = self.settings.endpoints.get(name)
            if endpoint is None and name in AGENT_CLI_PROVIDERS:
                adapter = self._adapters[name] = cli_adapter(name)
                return adapter
            if endpoint is None:
                raise ConfigError("AIOS_TARGETS", f"no endpoint named '{name}'")
            if endpoint.kind == "anthropic":
                from aios.providers.anthropic_provider import AnthropicProvider

                adapter = AnthropicProvider(endpoint, output=self.settings.anthropic_output)
            else:
                from aios.providers.openai_provider import OpenAIProvider

                adapter = OpenAIProvider(endpoint)
            self._adapters[name] = adapter
        return adapter

    def preload(self) -> None:
        """Import the SDK of each configured endpoint now. A process about to run many skills at once (the
        drainer, in a thread while it claims its first runs) would otherwise import it on its event loop in
        the first run's call, stalling every run it has started."""
        kinds = {endpoint.kind for endpoint in self.settings.endpoints.values()}
        if "anthropic" in kinds:
            import aios.providers.anthropic_provider  # noqa: F401
        if kinds - {"anthropic"}:
            import aios.providers.openai_provider  # noqa: F401

    async def complete(self, target: Target, request: ModelRequest, feedback: str | None, timeouts: Timeouts) -> Reply:
        return await self.adapter(target.provider).complete(target, request, feedback, timeouts)


__all__ = ["ModelRequest", "Provider", "Providers"]
