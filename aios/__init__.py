"""aios: skills that keep running when Claude is down.

The Python API runs one skill as a Prefect flow and returns its run record (`aios.runs.record.SkillRun`):

    from aios import run_skill
    run = run_skill("research-lead", {"company": "Acme"})   # or: await arun_skill(...)
    run.status, run.provider, run.output

The project is `AIOS_HOME` (else the current directory); its flows are found there by entrypoint
(`aios/config/entrypoints.py`). Called inside your own Prefect flow, the
skill runs as its subflow; otherwise on the project's kept server (`aios server start`) when one is
up, else on whatever Prefect is configured with. Nothing is imported here until a function is called,
so `import aios.<module>` stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aios.runs.record import SkillRun

__all__ = ["arun_skill", "run_skill"]


async def arun_skill(skill: str, inputs: dict[str, Any] | None = None) -> SkillRun:
    """Run `skill` now and return its record, whatever its ending (completed, deferred, dropped, failed).

    Settings, skill, inputs, context budget and state store are checked first: a mistake there raises
    `aios.errors.AiosError` (one line naming the file or variable) before any model is called.
    """
    _prepare_environment()
    from aios.runs.record import SkillRun
    from aios.config.entrypoints import SKILL_FLOW
    from aios.config.runtime import preflight

    given = dict(inputs or {})
    preflight(skill, given)
    build_skill_flow = SKILL_FLOW.load()
    with _on_kept_server():
        state = await build_skill_flow(skill)(inputs=given, return_state=True)
        data = await state.result(raise_on_failure=False)
    if isinstance(data, BaseException):
        raise data  # a bug, not an outage (outages end in a record)
    if not isinstance(data, dict):
        raise RuntimeError(f"{skill}: the flow ended {state.name} without a run record: {state.message}")
    return SkillRun.model_validate(data)


def run_skill(skill: str, inputs: dict[str, Any] | None = None) -> SkillRun:
    """`arun_skill` for synchronous code (a script, a sync Prefect flow); use `await arun_skill` inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun_skill(skill, inputs))
    raise RuntimeError("run_skill() was called inside a running event loop: use `await aios.arun_skill(...)` there")


def _prepare_environment() -> None:
    """The CLI's environment defaults, when Prefect is not imported yet (it reads its settings at import)."""
    if "prefect" not in sys.modules:
        from aios.config.bootstrap import prepare_environment

        prepare_environment()


@contextlib.contextmanager
def _on_kept_server() -> Iterator[None]:
    """Prefect imported before aios, with no server configured: use the project's kept server if it is up."""
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from aios.config.bootstrap import project_root
    from aios.config.kept_server import kept_server

    server = None if PREFECT_API_URL.value() or FlowRunContext.get() else kept_server(project_root())
    if server is None:
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: server.url}):
        yield
