"""The `aios` command line. Every user error is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Annotated

from aios.runner import fast_run_or_continue

fast_run_or_continue()  # `aios run SKILL` on the kept server's warm runner: exits here, before any heavy import

import typer  # noqa: E402
from rich.table import Table  # noqa: E402

from aios.bootstrap import prepare_environment  # noqa: E402

prepare_environment()

from aios.console import CONTEXT_SETTINGS, JsonFlag, console, err_console, fail, run  # noqa: E402
from aios.settings import get_settings  # noqa: E402

app = typer.Typer(
    name="aios",
    help="A model-agnostic AI operating system on Prefect: skills keep running when Claude is down.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
)


@app.command("skills")
def skills_command(as_json: JsonFlag = False) -> None:
    """List the skills: name, triage, schedule, contract."""
    from aios.skills import load_skills

    skills = load_skills(get_settings().skills_dir)
    rows = [
        {
            "name": s.name,
            "triage": s.triage.value,
            "schedule": s.metadata.schedule,
            "contract": s.metadata.contract,
            "models": [str(m) for m in s.metadata.models],
            "description": s.description,
        }
        for s in skills
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("skill", "triage", "schedule", "contract", "models")
    for r in rows:
        table.add_row(r["name"], r["triage"], r["schedule"] or "-", r["contract"], ", ".join(r["models"]) or "default")
    console.print(table)


@app.command("run")
def run_command(
    skill: Annotated[str, typer.Argument(help="The skill's name (its folder under skills/).")],
    inputs: Annotated[list[str], typer.Option("--input", "-i", help="key=value, repeatable.")] = [],  # noqa: B006
    as_json: JsonFlag = False,
    record: Annotated[str | None, typer.Option("--record", help="Run a records skill on this one record (its key), resuming at its first unfinished step.")] = None,
) -> None:
    """Run one skill now as a Prefect flow; exit 0 only when it produced a valid output.

    Settings, skill, inputs, context budget and state store are checked before the flow starts,
    so a mistake there costs no model call.
    """
    from aios.runner import show_run
    from aios.runs import SkillRun
    from aios.runtime import preflight
    from aios.server_cli import hint_when_no_server
    from aios.skills import parse_inputs
    from flows.skill import build_skill_flow

    if record is not None:
        from flows.records import run_record_command

        raise typer.Exit(run_record_command(skill, record, as_json))
    given = parse_inputs(inputs)
    preflight(skill, given)
    hint_when_no_server()

    async def go():
        state = await build_skill_flow(skill)(inputs=given, return_state=True)
        return state, await state.result(raise_on_failure=False)

    state, data = asyncio.run(go())
    if not isinstance(data, dict):
        fail(f"{skill}: the flow ended {state.name} without a result: {state.message}")
    code = show_run(SkillRun.model_validate(data).summary(), as_json)  # the warm runner's output too
    if code:
        raise typer.Exit(code)


@app.command("emulate")
def emulate_command(
    port: Annotated[int, typer.Option(help="Port for all emulators.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless --allow-remote).")] = "127.0.0.1",
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback --host (the /_control routes stay loopback-only).")
    ] = False,
) -> None:
    """Start the local emulators (Anthropic, OpenAI, status pages, Sheets, Airtable) on one port."""
    from aios.emulators.server import check_bind, serve

    warning = check_bind(host, allow_remote)  # a refused host is one line, before anything is printed
    if warning:
        err_console.print(warning, highlight=False, soft_wrap=True)
    base = f"http://{host}:{port}"
    # Plain print, not the console: a wrapped line would split an `export` a user copies and pastes.
    print(
        f"export ANTHROPIC_BASE_URL={base}/anthropic ANTHROPIC_API_KEY=emulator-key\n"
        f"export OPENAI_BASE_URL={base}/openai/v1 OPENAI_API_KEY=emulator-key\n"
        f"# fault injection: PUT {base}/_control/faults  (see README)",
        flush=True,
    )
    serve(host=host, port=port, allow_remote=allow_remote)


@app.command("deploy")
def deploy_command(
    write: Annotated[bool, typer.Option("--write", help="Regenerate prefect.yaml from the skills first.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Only check prefect.yaml against the skills.")] = False,
) -> None:
    """Create the work pool `aios` (queues default, health, deferred) and deploy prefect.yaml."""
    from deployments import apply, prefect_yaml

    home = get_settings().home
    if write:
        prefect_yaml.write(home)
    problems = prefect_yaml.check(home)
    if problems:
        for line in problems:
            err_console.print(line, highlight=False)
        fail("prefect.yaml is out of step with the skills (run `aios deploy --write`)", 1)
    if check:
        console.print("prefect.yaml is in step with the skills")
        return
    settings = get_settings()
    asyncio.run(apply.ensure_pool(settings.work_pool, settings.deferred_queue))
    apply.deploy_all(home)
    console.print(f"deployed prefect.yaml to work pool '{settings.work_pool}'")


@app.command("status")
def status_command(
    check: Annotated[bool, typer.Option("--check", help="Run the status-check flow now first.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Provider and model health, breaker states, and the deferred queue."""
    from aios.outage import deferral, health_store

    if check:
        from flows.status_check import status_check

        asyncio.run(status_check())
    snapshot = health_store.read_snapshot()
    paused, parked, missing = asyncio.run(_deferred_queue())
    data = {
        "checked_at": snapshot.checked_at.isoformat(),
        "providers": {k: v.value for k, v in snapshot.providers.items()},
        "models": {k: v.value for k, v in snapshot.models.items()},
        "deferred_queue_paused": paused,
        "parked_runs": parked,
        "deferred_queue_problem": missing,
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table("subject", "health", title=f"health at {data['checked_at']}")
    for subject, health in {**data["providers"], **data["models"]}.items():
        table.add_row(subject, health)
    console.print(table)
    queue = f"unknown ({missing})" if paused is None else ("paused" if paused else "running")
    console.print(f"deferred queue: {queue}; parked runs: {parked if parked is not None else '-'}", markup=False, highlight=False, soft_wrap=True)


async def _deferred_queue() -> tuple[bool | None, int | None, str | None]:
    """(paused, parked runs, what is missing): a missing server, pool or queue, and how to create it."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    from aios.outage import deferral

    settings = get_settings()
    pool, queue = settings.work_pool, settings.deferred_queue
    if not PREFECT_API_URL.value():
        return None, None, "PREFECT_API_URL is not set: no Prefect server to ask"
    try:
        async with get_client() as client:
            try:
                await client.read_work_pool(pool)
            except ObjectNotFound:
                return None, None, f"the Prefect server has no work pool '{pool}'; `aios deploy` creates it"
            try:
                await client.read_work_queue_by_name(queue, work_pool_name=pool)
            except ObjectNotFound:
                return None, None, f"work pool '{pool}' has no queue '{queue}'; `aios deploy` creates it"
        return await deferral.is_paused(), len(await deferral.parked_runs()), None
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        return None, None, f"no Prefect server at {PREFECT_API_URL.value()}: {type(exc).__name__}"


@app.command("deferred")
def deferred_command(as_json: JsonFlag = False) -> None:
    """List runs parked in the deferred queue."""
    from aios.outage import deferral

    runs = asyncio.run(deferral.parked_runs())
    rows = [
        {"id": str(r.id), "name": r.name, "state": r.state_name, "parameters": r.parameters, "created": r.created.isoformat() if r.created else None}
        for r in runs
    ]
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table("flow run", "name", "state", "created", title=f"{len(rows)} parked run(s)")
    for r in rows:
        table.add_row(r["id"], r["name"], r["state"], r["created"] or "")
    console.print(table)


@app.command("resume")
def resume_command() -> None:
    """Resume the deferred queue by hand (the status-check flow does it when Claude is healthy)."""
    from aios.outage import deferral

    changed = asyncio.run(deferral.set_paused(False))
    console.print("deferred queue resumed" if changed else "deferred queue was already running")


@app.command("drain")
def drain_command(
    concurrency: Annotated[int, typer.Option(help="Parked runs executed at once in this process.")] = 8,
) -> None:
    """Run the parked runs of the (resumed) deferred queue in this process, faster than a process worker."""
    from aios.outage import deferral
    from aios.outage.drainer import drain_deferred
    from flows.skill import skill_flows

    if asyncio.run(deferral.is_paused()):
        fail("the deferred queue is paused (Claude is not healthy yet); `aios resume` to force it")
    stats = asyncio.run(drain_deferred(skill_flows(), concurrency=concurrency))
    console.print(f"drained {stats.started} run(s): {stats.completed} completed, {stats.failed} not completed")


@app.command("drill")
def drill_command(
    scenarios: Annotated[list[str], typer.Option("--scenario", "-s", help="Repeatable; default: all.")] = [],  # noqa: B006
    live: Annotated[bool, typer.Option("--live", help="Real keys: black-hole Anthropic, answer from the real OpenAI.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the drill's Prefect UI running afterwards (Ctrl-C to stop).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Simulate a Claude outage and prove the failover protocol works (exit 1 if any expectation fails)."""
    import logging
    import time

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from aios.drill.runner import DRILL_ENV
    from aios.drill.scenarios import SCENARIOS
    from aios.runtime import reset_runtime
    from aios.settings import reload_settings
    from aios.stack import LocalStack
    from flows.drill import fire_drill

    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        fail(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if live and not (os.environ.get("ANTHROPIC_API_KEY") and os.environ.get("OPENAI_API_KEY")):
        fail("--live needs ANTHROPIC_API_KEY and OPENAI_API_KEY")
    chosen = scenarios or list(SCENARIOS)
    logging.getLogger("prefect").setLevel(logging.WARNING)
    out = err_console if as_json else console
    with out.status("starting the drill's stack (emulators, Prefect server, worker)...") as status:
        with LocalStack(project=get_settings().home, scheduler=False, ui=keep, emulate_llms=not live) as stack:
            status.update("deploying the skills to the drill's work pool...")
            stack.run("deploy", timeout=300)
            stack.start_workers(1)
            with stack.environment(), temporary_settings(updates={PREFECT_API_URL: stack.api_url}):
                os.environ.update(DRILL_ENV)
                reload_settings()
                reset_runtime()

                def progress(name: str) -> None:
                    status.update(f"scenario [bold]{name}[/bold] ({chosen.index(name) + 1}/{len(chosen)})...")

                data = asyncio.run(fire_drill(chosen, live, stack.emulator_url, progress))
            reload_settings()
            reset_runtime()
            if keep:
                status.stop()
                out.print(f"Prefect UI of the drill: {stack.api_url.removesuffix('/api')}  (Ctrl-C to stop)")
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(1)
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        _print_drill(data)
    if not data["passed"]:
        raise typer.Exit(1)


def _print_drill(data: dict) -> None:
    """The same Markdown the fire-drill artifact shows, rendered for the terminal."""
    from rich.markdown import Markdown

    from aios.drill.report import DrillReport

    console.print(Markdown(DrillReport.model_validate(data).markdown()))


def _register_subcommands() -> None:
    from aios.portability.cli import export_command, memory_command, sync_app
    from aios.state.cli import state_app
    from aios.server_cli import server_app
    from aios.validate_cli import doctor_command, validate_command

    app.add_typer(sync_app, name="sync", help="Keep Claude Code and Codex configured alike (MCP, instructions).")
    app.command("export")(export_command)
    app.command("memory")(memory_command)
    app.add_typer(state_app, name="state", help="State store: pending journal writes, replay.")
    app.command("validate")(validate_command)
    app.command("doctor")(doctor_command)
    app.add_typer(server_app, name="server", help="The project's kept Prefect server: start, stop, status.")


_register_subcommands()


def main() -> None:
    """Entry point of the `aios` command."""
    run(app)


if __name__ == "__main__":
    main()

