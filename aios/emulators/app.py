"""One Starlette app on one port: LLM APIs, status pages and the control API.

Paths (the SDK base URLs in brackets):
  /anthropic/v1/messages          Anthropic Messages   [http://HOST:PORT/anthropic]
  /openai/v1/chat/completions     OpenAI Chat          [http://HOST:PORT/openai/v1]
  /openai/v1/responses            OpenAI Responses
  /status/{claude,openai}/api/v2/...   Atlassian Statuspage v2 JSON
  /sheets/v4/spreadsheets/...     Google Sheets v4     [AIOS_STATE_SHEETS_API_URL=http://HOST:PORT/sheets]
  /airtable/v0/...                Airtable REST        [AIOS_STATE_AIRTABLE_API_URL=http://HOST:PORT/airtable]
  /_control/...                   fault injection and inspection (loopback clients only)
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

from aios.emulators.airtable import build_airtable_app
from aios.emulators.base import LoopbackOnlyControl
from aios.emulators.control import control_routes
from aios.emulators.faults import EmulatorState
from aios.emulators.llm import anthropic_app, openai_app
from aios.emulators.sheets import build_sheets_app
from aios.emulators.statuspage import statuspage_routes

# More emulators (Google Sheets, Airtable, ...) go here, after the built-in routes. An entry
# is a route, or a zero-argument factory returning one so every build_app() gets fresh state:
#   lambda: Mount("/sheets", app=build_sheets_app())
EXTRA_MOUNTS: list[BaseRoute | Callable[[], BaseRoute]] = [
    lambda: Mount("/sheets", app=build_sheets_app(auto_create=True)),
    lambda: Mount("/airtable", app=build_airtable_app(auto_create=True)),
]


def build_app() -> Starlette:
    """A fresh app with its own fault, request-log and status state (in `app.state.emulator`)."""
    state = EmulatorState()
    app = Starlette(
        routes=[
            Mount("/anthropic", app=anthropic_app(state)),
            Mount("/openai", app=openai_app(state)),
            Mount("/status", routes=statuspage_routes(state.status)),
            Mount("/_control", routes=control_routes(state)),
            *(m if isinstance(m, BaseRoute) else m() for m in EXTRA_MOUNTS),
        ],
        middleware=[Middleware(LoopbackOnlyControl)],
    )
    app.state.emulator = state
    return app
