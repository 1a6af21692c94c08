"""One Starlette app on one port: LLM APIs, status pages and the control API.

Paths (the SDK base URLs in brackets):
  /anthropic/v1/messages          Anthropic Messages   [http://HOST:PORT/anthropic]
  /openai/v1/chat/completions     OpenAI Chat          [http://HOST:PORT/openai/v1]
  /openai/v1/responses            OpenAI Responses
  /status/{claude,openai}/api/v2/...   Atlassian Statuspage v2 JSON
  /_control/...                   fault injection and inspection
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from aios.emulators.control import control_routes
from aios.emulators.faults import EmulatorState
from aios.emulators.llm import anthropic_app, openai_app
from aios.emulators.statuspage import statuspage_routes

# More emulators (Google Sheets, Airtable, ...) register their Mounts here; they are
# appended after the built-in routes by build_app().
EXTRA_MOUNTS: list[BaseRoute] = []


def build_app() -> Starlette:
    """A fresh app with its own fault, request-log and status state (in `app.state.emulator`)."""
    state = EmulatorState()
    app = Starlette(
        routes=[
            Mount("/anthropic", app=anthropic_app(state)),
            Mount("/openai", app=openai_app(state)),
            Mount("/status", routes=statuspage_routes(state.status)),
            Mount("/_control", routes=control_routes(state)),
            *EXTRA_MOUNTS,
        ]
    )
    app.state.emulator = state
    return app
