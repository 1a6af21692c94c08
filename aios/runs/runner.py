"""The warm runner: `aios run` in well under 2 s against the kept server.

A fresh `aios run` process spends seconds importing Prefect and both SDKs before its flow starts.
`aios server start` therefore also starts this runner beside the server: a long-lived process that
has the skill flows imported and runs each requested skill in-process as a real Prefect flow run on
the kept server (the same `aios.arun_skill`: preflight, flow, run record). `aios run` sends it the
skill and the raw `--input` pairs over HTTP on 127.0.0.1 and prints the record it gets back, so that
process imports neither Prefect nor the SDKs (`fast_run`).

Safety: the runner binds 127.0.0.1 only and answers only requests that carry the random token kept
in `.aios/server.json` (mode 0600). It runs with the environment `aios server start` had; a client
whose settings differ (another `.env`, another variable) is told so and runs in its own process,
compared by an HMAC of both environments under the token (no key is ever written down). Skills,
knowledge and settings files are re-read on every request, as a fresh process would.

Only the standard library is imported at module level: `fast_run` runs at the start of `aios`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import sys
from pathlib import Path
from typing import Any

TOKEN_ENV = "AIOS_RUNNER_TOKEN"  # how `aios server start` hands the token over; popped at once
LOG = Path(".aios") / "runner.log"
CONNECT_TIMEOUT = 5.0
# The settings a run depends on. AIOS_HOME and PREFECT_API_URL are left out: both are the kept
# server's project and URL by construction (the client reached the runner through that record).
SETTING_PREFIXES = ("AIOS_", "ANTHROPIC_", "OPENAI_", "PREFECT_", "OTEL_", "GOOGLE_", "AIRTABLE_", "GSPREAD_")
SETTING_NAMES = {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"}
NOT_SETTINGS = {"AIOS_HOME", "PREFECT_API_URL", TOKEN_ENV}


def settings_fingerprint(token: str, environ: dict[str, str]) -> str:
    """HMAC (keyed by the runner's token) of the variables a run depends on: equal iff the settings are."""
    chosen = sorted(
        (k, v) for k, v in environ.items()
        if (k.startswith(SETTING_PREFIXES) or k.upper() in SETTING_NAMES) and k not in NOT_SETTINGS
    )
    message = "\0".join(f"{k}={v}" for k, v in chosen).encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- the client side: `aios run`


def parse_run_argv(argv: list[str]) -> tuple[str, list[str], bool] | None:
    """(skill, raw input pairs, --json) for exactly `run SKILL [-i k=v | --input k=v | --input=k=v]... [--json]`.

    Anything else (--record, --help, an unknown option) is left to the full CLI, which explains it.
    """
    if len(argv) < 2 or argv[0] != "run" or argv[1].startswith("-"):
        return None
    skill, rest, pairs, as_json = argv[1], argv[2:], [], False
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--json":
            as_json = True
        elif arg in ("-i", "--input") and i + 1 < len(rest):
            pairs.append(rest[i + 1])
            i += 1
        elif arg.startswith("--input="):
            pairs.append(arg.removeprefix("--input="))
        else:
            return None
        i += 1
    return skill, pairs, as_json


def fast_run(argv: list[str]) -> int | None:
    """Run `aios run ...` on the warm runner and return its exit code; None: the full CLI must do it.

    None when the arguments are not a plain run, no kept server with a runner is up for this
    project, the user points Prefect elsewhere, or the runner's settings differ from this process's.
    """
    request = parse_run_argv(argv)
    if request is None:
        return None
    from aios.config.bootstrap import prepare_environment, project_root
    from aios.config.kept_server import kept_server, runner_is_ours

    try:
        prepare_environment()  # the same .env and Prefect defaults the full CLI applies
    except Exception:  # noqa: BLE001 - the full CLI reports a broken environment as one line
        return None
    server = kept_server(project_root())
    if server is None or os.environ.get("PREFECT_API_URL") != server.url or not runner_is_ours(server):
        return None
    skill, pairs, as_json = request
    body = {"skill": skill, "inputs": pairs, "settings": settings_fingerprint(server.token, dict(os.environ))}
    conn = http.client.HTTPConnection("127.0.0.1", server.runner_port, timeout=CONNECT_TIMEOUT)
    try:
        conn.connect()
    except OSError:
        conn.close()
        return None  # not listening: nothing was sent, the full CLI runs it
    try:
        status, reply = _post(conn, server.token, "/run", body)
    except (OSError, http.client.HTTPException, ValueError) as exc:  # sent: running it here could run it twice
        return _error(f"the kept runner stopped answering during the run ({type(exc).__name__}); see {LOG}", 3)
    except KeyboardInterrupt:
        return _error(f"interrupted; the run may still finish in the kept runner (see {LOG} and the Prefect UI)", 130)
    finally:
        conn.close()
    if status == 409:
        _note(f"the kept runner has other settings than this command ({reply.get('error')}); running here. "
              "`aios server stop` then `aios server start` refreshes it")
        return None
    if status != 200:
        return _error(f"the kept runner refused the run (HTTP {status}: {reply.get('error')}); see {LOG}", 3)
    if "error" in reply:
        return _error(reply["error"], int(reply.get("exit", 3)))
    return show_run(reply["summary"], as_json)


def _post(conn: http.client.HTTPConnection, token: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    conn.sock.settimeout(None)  # a run takes as long as its model calls (their own timeouts bound it)
    conn.request("POST", path, body=json.dumps(body), headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def show_run(summary: dict[str, Any], as_json: bool) -> int:
    """Print a run's `--json` object or table, its warnings, and return `aios run`'s exit code."""
    from aios.cli.console import console, err_console

    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        from rich.table import Table

        table = Table("#", "target", "outcome", "error", "ms", title=f"{summary['skill']}: {summary['status']}")
        for i, a in enumerate(summary["attempts"], 1):
            table.add_row(str(i), f"{a['provider']}:{a['model']}", a["outcome"], a["error_class"] or "", f"{a['ms']:.0f}")
        console.print(table)
        if summary["output"] is not None:
            console.print_json(json.dumps(summary["output"]))
    skill = summary["skill"]
    if summary["not_recorded"]:
        err_console.print(f"warning: {skill}: {summary['not_recorded']}", markup=False, highlight=False, soft_wrap=True)
    if summary["status"] != "completed":
        err_console.print(f"{skill}: {summary['status']}: {summary['reason']}", markup=False, highlight=False, soft_wrap=True)
        return 1
    return 0


def _error(message: str, code: int) -> int:
    from rich.markup import escape

    from aios.cli.console import err_console

    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return code


def _note(message: str) -> None:
    from aios.cli.console import err_console

    err_console.print(f"note: {message}", markup=False, highlight=False, soft_wrap=True)


def fast_run_or_continue() -> None:
    """At the top of `aios`: exit with the warm runner's answer, or return to let the full CLI run."""
    if Path(sys.argv[0]).name != "aios":
        return  # imported by a test or another program: never act on its argv
    code = fast_run(sys.argv[1:])
    if code is not None:
        sys.stdout.flush()
        sys.exit(code)


# ---------------------------------------------------------------- the runner process


def serve(port: int) -> None:
    """Answer `POST /run` on 127.0.0.1:`port` until killed (`aios server stop` signals the group)."""
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    token = os.environ.pop(TOKEN_ENV)  # never handed to the flows or anything they start
    settings = settings_fingerprint(token, dict(os.environ))

    import aios
    import aios.providers.anthropic_provider  # noqa: F401 - the point of this process: Prefect and both SDKs
    import aios.providers.openai_provider  # noqa: F401    imported once, not per run
    from aios.config.entrypoints import SKILL_FLOW
    from aios.errors import AiosError
    from aios.skills.loader import parse_inputs

    SKILL_FLOW.load()  # the project's skill flows (and Prefect with them), imported once, not per run

    loop = asyncio.new_event_loop()

    def run_one(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not hmac.compare_digest(str(body.get("settings", "")), settings):
            return 409, {"error": "an AIOS_/provider/Prefect variable or .env differs"}
        try:
            given = parse_inputs([str(p) for p in body.get("inputs", [])])
            run = asyncio.run_coroutine_threadsafe(aios.arun_skill(str(body["skill"]), given), loop).result()
        except AiosError as exc:
            return 200, {"error": str(exc), "exit": 2}
        except Exception as exc:  # noqa: BLE001 - a bug: one line to the user, the traceback to the log
            import traceback

            traceback.print_exc()
            return 200, {"error": f"{type(exc).__name__}: {exc}", "exit": 3}
        return 200, {"summary": json.loads(json.dumps(run.summary(), default=str))}

    class Handler(BaseHTTPRequestHandler):
        def _authorized(self) -> bool:
            given = self.headers.get("Authorization", "")
            return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

        def _reply(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if not self._authorized():
                return self._reply(401, {"error": "missing or wrong token"})
            if self.path != "/health":
                return self._reply(404, {"error": "not found"})
            self._reply(200, {"pid": os.getpid()})

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorized():
                return self._reply(401, {"error": "missing or wrong token"})
            if self.path != "/run":
                return self._reply(404, {"error": "not found"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            except ValueError:
                return self._reply(400, {"error": "the body is not JSON"})
            self._reply(*run_one(body))

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the flow runs log themselves; no line per request

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="aios-runner-http", daemon=True).start()
    print(f"aios runner: pid {os.getpid()} on 127.0.0.1:{port}, Prefect at {os.environ.get('PREFECT_API_URL')}", flush=True)
    loop.run_forever()  # the flows run here, in the main thread, one event loop for all of them


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aios.runs.runner", description="The kept server's warm runner.")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
