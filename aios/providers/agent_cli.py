"""Claude Code (`claude -p`) and Codex (`codex exec`) as fallback targets: `claude-code:sonnet`, `codex:gpt-5.5`.

Users often run skills on a subscription through these CLIs, so a chain may go
`anthropic → claude-code → codex → openai`. Each call runs the CLI once, headless, with no tools,
no session kept, the prompt on stdin and the output contract as its JSON schema. The CLI runs in
its own process group inside a scratch directory: on timeout or cancellation the whole group is
terminated, then killed, and the directory is removed. Failures become the same `ProviderFailure`
kinds the SDK adapters raise, so triage, breakers and run records treat these targets like any other.

Where the CLIs send their requests is the CLI's own business: Claude Code honours
`ANTHROPIC_BASE_URL`/`ANTHROPIC_API_KEY` or its login; Codex uses its login, or the
OpenAI-compatible Responses endpoint in `AIOS_CODEX_BASE_URL` (key in `AIOS_CODEX_API_KEY_ENV`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from aios.core.contract import contract_validator
from aios.core.failures import FailureKind, ProviderFailure
from aios.core.fallback import Reply, Usage, time_left
from aios.core.policy import Target, Timeouts
from aios.providers.base import REASK, ModelRequest
from aios.config.settings import AGENT_CLI_PROVIDERS

CLAUDE_CODE, CODEX = AGENT_CLI_PROVIDERS
TERMINATE_GRACE = 2.0  # seconds between SIGTERM and SIGKILL for the CLI's process group

# Keep the CLIs off the network except for the model endpoint (documented switches of each CLI).
CLAUDE_QUIET_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",  # the fallback policy retries, not the CLI
    "CLAUDE_CODE_DISABLE_CLAUDE_MDS": "1",  # the skill's context only, not the user's CLAUDE.md files
    "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
}
CODEX_QUIET_CONFIG = (
    "analytics.enabled=false",
    "feedback.enabled=false",
    "check_for_update_on_startup=false",
    'otel.exporter="none"',
)


class AgentCliSettings(BaseSettings):
    """Where the CLIs are and, for Codex, which endpoint it should use instead of its login."""

    model_config = SettingsConfigDict(env_prefix="AIOS_", env_file=".env", extra="ignore")

    claude_code_bin: str | None = None  # default: .aios/tools/node_modules/.bin/claude, then PATH
    codex_bin: str | None = None
    codex_base_url: str | None = None  # an OpenAI-compatible Responses API; unset: Codex's own login
    codex_api_key_env: str = "OPENAI_API_KEY"
    probe_cli_targets: bool = False  # AIOS_PROBE_CLI_TARGETS: status checks and doctor ask CLI targets a real question


def cli_timeouts(timeouts: Timeouts, time_left: float | None) -> Timeouts:
    """Under a skill's deadline the CLI's read timeout is the time left in it: an agent CLI may take minutes."""
    return timeouts if time_left is None else timeouts.model_copy(update={"read": max(time_left, 0.001)})


def project_tools_bin(name: str) -> Path:
    home = Path(os.environ.get("AIOS_HOME") or Path(__file__).resolve().parents[2])
    return home / ".aios" / "tools" / "node_modules" / ".bin" / name


def find_binary(name: str, configured: str | None) -> str | None:
    if configured:
        return configured if Path(configured).is_file() else shutil.which(configured)
    local = project_tools_bin(name)
    return str(local) if local.is_file() else shutil.which(name)


# --------------------------------------------------------------- process group
@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str


async def run_in_group(argv: list[str], stdin: str, *, cwd: Path, env: dict[str, str], timeout: float) -> CliRun:
    """Run argv in a new process group; on timeout or cancellation terminate, then kill, the whole group."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, start_new_session=True,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout)
    except TimeoutError:
        await _end_group(proc)
        raise ProviderFailure(f"no answer within {timeout:g}s", kind=FailureKind.read_timeout) from None
    except BaseException:
        await _end_group(proc)
        raise
    _kill_group(proc.pid, signal.SIGKILL)  # helpers the CLI left running die with it
    return CliRun(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _end_group(proc: asyncio.subprocess.Process) -> None:
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.shield(asyncio.wait_for(proc.wait(), TERMINATE_GRACE))
    except (TimeoutError, asyncio.CancelledError):
        pass
    _kill_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(proc.wait())


# ------------------------------------------------------------- error mapping
_RETRY_IN = re.compile(r"(?:try again in|retry after|retry in)\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)?", re.I)
_STATUS_IN = re.compile(r"\b(?:status:?|API Error:|\()\s*(\d{3})\b|\b(\d{3}) (?:Too Many|Service|Internal|Bad Gateway|"
                        r"Gateway|Unauthorized|Forbidden|Not Found|Bad Request|Overloaded)", re.I)
_PATTERNS: tuple[tuple[re.Pattern[str], FailureKind], ...] = (
    (re.compile(r"not logged in|/login|missing environment variable|invalid api key|api key .*not set|"
                r"authentication|OPENAI_API_KEY", re.I), FailureKind.missing_key),
    (re.compile(r"connection to the api was lost|ECONNRESET|socket hang up|stream disconnected|"
                r"stream closed before|decoding response body|premature close", re.I), FailureKind.stream_cut),
    (re.compile(r"ECONNREFUSED|connection refused|unable to connect|error sending request", re.I),
     FailureKind.connect_refused),
    (re.compile(r"ENOTFOUND|EAI_AGAIN|lookup address|name does not resolve|name or service not known", re.I),
     FailureKind.dns),
    (re.compile(r"timed? ?out|timeout", re.I), FailureKind.read_timeout),
    (re.compile(r"JSON Parse error|invalid json|expected value|unexpected token", re.I),
     FailureKind.malformed_response),
)


def retry_after_in(message: str) -> float | None:
    """A retry time the CLI's message states ("Please try again in 1.5s"), like the 429 header rule."""
    match = _RETRY_IN.search(message)
    if not match:
        return None
    value = float(match.group(1))
    return value / 1000 if (match.group(2) or "").lower() == "ms" else value


def failure_from_message(message: str, status: int | None = None) -> ProviderFailure:
    """Map a CLI's error text (and the API status it reports, if any) to a ProviderFailure."""
    message = " ".join(message.split())[:500] or "the CLI failed without a message"
    if status is None and (match := _STATUS_IN.search(message)):
        status = int(match.group(1) or match.group(2))
    if status is not None and status >= 400:
        if status in (401, 403) and re.search(r"not logged in|/login", message, re.I):
            return ProviderFailure(message, kind=FailureKind.missing_key)
        return ProviderFailure(message, kind=FailureKind.status, status=status, retry_after=retry_after_in(message))
    for pattern, kind in _PATTERNS:
        if pattern.search(message):
            return ProviderFailure(message, kind=kind)
    return ProviderFailure(message, kind=FailureKind.malformed_response)


# ------------------------------------------------------------------ adapters
def _prompt(request: ModelRequest, feedback: str | None) -> str:
    return request.prompt if not feedback else f"{request.prompt}\n\n{REASK.format(problem=feedback)}"


def _base_env() -> dict[str, str]:
    return dict(os.environ)


class CliHealth(BaseModel):
    """What `aios doctor` needs about one CLI target (never a token)."""

    target: str
    binary: str | None
    version: str | None
    can_answer: bool
    detail: str


class CliReadiness(BaseModel):
    """The free check of a CLI target: binary, version, and where its login or key comes from.

    No model call, and never a token: `credentials` names a variable or a login, not its value.
    """

    target: str
    binary: str | None
    version: str | None
    credentials: str | None
    problem: str | None  # None: ready to be called

    @property
    def ready(self) -> bool:
        return self.problem is None


CLAUDE_KEY_ENVS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")


class AgentCliProvider:
    """Shared run/health machinery; subclasses say how to call their CLI and read its answer."""

    name: str
    binary_name: str

    def __init__(self, settings: AgentCliSettings | None = None) -> None:
        self.settings = settings or AgentCliSettings()

    def binary(self) -> str | None:
        raise NotImplementedError

    async def complete(self, target: Target, request: ModelRequest, feedback: str | None, timeouts: Timeouts) -> Reply:
        binary = self.binary()
        if binary is None:
            raise ProviderFailure(f"{self.binary_name} is not installed (scripts/install-agent-clis)",
                                  kind=FailureKind.missing_key)
        timeouts = cli_timeouts(timeouts, time_left())
        with tempfile.TemporaryDirectory(prefix=f"aios-{self.name}-") as scratch:
            workdir = Path(scratch)
            argv, env = self.command(binary, target, request, workdir, timeouts)
            run = await run_in_group(argv, _prompt(request, feedback), cwd=workdir, env=env, timeout=timeouts.read)
            return self.reply(run, target, workdir)

    def command(self, binary: str, target: Target, request: ModelRequest, workdir: Path,
                timeouts: Timeouts) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def reply(self, run: CliRun, target: Target, workdir: Path) -> Reply:
        raise NotImplementedError

    async def credentials(self, binary: str) -> tuple[str | None, str | None]:
        """(where the login or key comes from, problem): asks the CLI or the environment, never a model."""
        raise NotImplementedError

    async def _quiet_run(self, argv: list[str], timeout: float = 15) -> CliRun | None:
        """A short side command (`--version`, a login check) in a scratch directory; None if it did not finish."""
        with tempfile.TemporaryDirectory(prefix=f"aios-{self.name}-") as scratch:
            try:
                return await run_in_group(argv, "", cwd=Path(scratch), env=_base_env() | CLAUDE_QUIET_ENV,
                                          timeout=timeout)
            except ProviderFailure:
                return None

    async def version(self, binary: str) -> str | None:
        run = await self._quiet_run([binary, "--version"])
        return run.stdout.strip().splitlines()[0] if run and run.returncode == 0 and run.stdout.strip() else None

    async def readiness(self, model: str) -> CliReadiness:
        """Can this target be called at all? Binary, version, login or key: free, no model call."""
        key = f"{self.name}:{model}"
        binary = self.binary()
        if binary is None:
            return CliReadiness(target=key, binary=None, version=None, credentials=None,
                                problem=f"{self.binary_name} is not installed (scripts/install-agent-clis)")
        version = await self.version(binary)
        if version is None:
            return CliReadiness(target=key, binary=binary, version=None, credentials=None,
                                problem=f"{binary} --version failed")
        credentials, problem = await self.credentials(binary)
        return CliReadiness(target=key, binary=binary, version=version, credentials=credentials, problem=problem)

    async def health(self, model: str, *, timeout: float = 60.0) -> CliHealth:
        """Binary, version and whether a one-line structured question gets a valid answer."""
        key = f"{self.name}:{model}"
        binary = self.binary()
        if binary is None:
            return CliHealth(target=key, binary=None, version=None, can_answer=False,
                             detail=f"{self.binary_name} is not installed")
        version = await self.version(binary)
        probe = ModelRequest(system="Answer in one word.", prompt="Say OK.", schema_name="probe",
                             output_schema={"type": "object", "properties": {"ok": {"type": "string"}},
                                            "required": ["ok"], "additionalProperties": False}, max_tokens=16)
        try:
            reply = await self.complete(Target(provider=self.name, model=model), probe, None,
                                        Timeouts(connect=timeout, read=timeout))
            contract_validator(probe.output_schema)(reply)
        except ProviderFailure as failure:
            return CliHealth(target=key, binary=binary, version=version, can_answer=False, detail=str(failure))
        return CliHealth(target=key, binary=binary, version=version, can_answer=True, detail="answered")


class ClaudeCodeProvider(AgentCliProvider):
    """`claude -p --output-format json --json-schema …`: the answer is the result's `structured_output`."""

    name = CLAUDE_CODE
    binary_name = "claude"

    def binary(self) -> str | None:
        return find_binary("claude", self.settings.claude_code_bin)

    async def credentials(self, binary: str) -> tuple[str | None, str | None]:
        """`claude auth status`: its JSON says whether it is logged in and how (names only, no token)."""
        run = await self._quiet_run([binary, "auth", "status"])
        status = _last_json_object(run.stdout) if run else None
        if status is None:
            return None, "`claude auth status` gave no answer"
        if not status.get("loggedIn"):
            return None, "not logged in (run `claude` and /login, or set ANTHROPIC_API_KEY)"
        method = str(status.get("authMethod") or "login")
        source = status.get("apiKeySource")
        return (f"{method} ({source})" if isinstance(source, str) and source else method), None

    def command(self, binary, target, request, workdir, timeouts):
        argv = [
            binary, "-p",
            "--output-format", "json",
            "--json-schema", json.dumps(_without_dialect(request.output_schema)),
            "--model", target.model,
            "--system-prompt", request.system,
            "--tools", "",
            "--no-session-persistence",
            "--strict-mcp-config",
            "--disable-slash-commands",
        ]
        env = _base_env() | CLAUDE_QUIET_ENV | {"API_TIMEOUT_MS": str(int(timeouts.read * 1000))}
        return argv, env

    def reply(self, run: CliRun, target: Target, workdir: Path) -> Reply:
        result = _last_json_object(run.stdout)
        if result is None:
            raise failure_from_message(run.stderr or run.stdout or f"claude exited with {run.returncode}")
        text = str(result.get("result") or "")
        if result.get("is_error"):
            status = result.get("api_error_status")
            raise failure_from_message(text or str(result.get("subtype")), status if isinstance(status, int) else None)
        if result.get("subtype") not in (None, "success"):
            raise ProviderFailure(f"claude stopped: {result.get('subtype')}", kind=FailureKind.malformed_response)
        answer = result.get("structured_output")
        if not isinstance(answer, dict):
            raise ProviderFailure(f"no structured output: {text[:300]}", kind=FailureKind.invalid_answer)
        usage = result.get("usage") or {}
        model_usage = result.get("modelUsage") or {}
        return Reply(
            content=answer,
            response_model=next(iter(model_usage), None) or target.model,
            response_id=result.get("session_id"),
            usage=Usage(input_tokens=int(usage.get("input_tokens") or 0),
                        output_tokens=int(usage.get("output_tokens") or 0)),
            finish_reason=result.get("stop_reason"),
        )


class CodexProvider(AgentCliProvider):
    """`codex exec --json --output-schema FILE`: the answer is the final `agent_message`."""

    name = CODEX
    binary_name = "codex"

    def binary(self) -> str | None:
        return find_binary("codex", self.settings.codex_bin)

    async def credentials(self, binary: str) -> tuple[str | None, str | None]:
        """With AIOS_CODEX_BASE_URL: is its key variable set? Else `codex login status` (its exit code only:
        the text shows part of an API key)."""
        if self.settings.codex_base_url:
            name = self.settings.codex_api_key_env
            return (f"{name} is set", None) if os.environ.get(name) else (None, f"{name} is not set")
        run = await self._quiet_run([binary, "login", "status"])
        if run is None or run.returncode != 0:
            return None, "not logged in (run `codex login`)"
        return "codex login", None

    def command(self, binary, target, request, workdir, timeouts):
        schema = workdir / "output.schema.json"
        schema.write_text(json.dumps(request.output_schema))
        argv = [
            binary, "exec", "--json", "--ephemeral",
            "--output-schema", str(schema),
            "--output-last-message", str(workdir / "last-message.txt"),
            "--sandbox", "read-only",
            "--skip-git-repo-check",
            "--disable", "plugins",  # else it resolves github.com and chatgpt.com (plugin sync) on every run
            "-m", target.model,
            "-c", f"developer_instructions={json.dumps(request.system)}",
        ]
        for setting in CODEX_QUIET_CONFIG:
            argv += ["-c", setting]
        if self.settings.codex_base_url:
            provider = (
                f'{{name="aios", base_url={json.dumps(self.settings.codex_base_url)}, '
                f'env_key={json.dumps(self.settings.codex_api_key_env)}, wire_api="responses", '
                f"request_max_retries=0, stream_max_retries=0, stream_idle_timeout_ms={int(timeouts.read * 1000)}}}"
            )
            argv += ["-c", f"model_providers.aios={provider}", "-c", 'model_provider="aios"']
        argv.append("-")  # the prompt comes on stdin
        return argv, _base_env()

    def reply(self, run: CliRun, target: Target, workdir: Path) -> Reply:
        events = [e for e in (_json_line(line) for line in run.stdout.splitlines()) if e is not None]
        message: str | None = None
        usage = Usage()
        thread_id = failed = None
        last_error: str | None = None
        for event in events:
            kind = event.get("type")
            if kind == "thread.started":
                thread_id = event.get("thread_id")
            elif kind == "item.completed" and (event.get("item") or {}).get("type") == "agent_message":
                message = str(event["item"].get("text") or "")
            elif kind == "turn.completed":
                raw = event.get("usage") or {}
                usage = Usage(input_tokens=int(raw.get("input_tokens") or 0),
                              output_tokens=int(raw.get("output_tokens") or 0))
            elif kind == "turn.failed":
                failed = str((event.get("error") or {}).get("message") or "turn failed")
            elif kind == "error":
                last_error = str(event.get("message") or "")
        if failed is not None:
            raise failure_from_message(failed)
        last = workdir / "last-message.txt"
        if message is None and last.is_file():
            message = last.read_text()
        if message is None:
            detail = last_error or (run.stderr.strip().splitlines() or [""])[-1]
            raise failure_from_message(detail or f"codex exited with {run.returncode}")
        if not message.strip():
            raise ProviderFailure("empty answer", kind=FailureKind.invalid_answer)
        return Reply(content=message, response_model=target.model, response_id=thread_id, usage=usage,
                     finish_reason="completed")


def _without_dialect(schema: dict[str, Any]) -> dict[str, Any]:
    """Claude Code's validator rejects a 2020-12 `$schema` URI it does not bundle; the keywords stay the same."""
    return {k: v for k, v in schema.items() if k != "$schema"}


def _json_line(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _last_json_object(text: str) -> dict[str, Any] | None:
    whole = _json_line(text.strip())
    if whole is not None:
        return whole
    for line in reversed(text.splitlines()):
        if (value := _json_line(line)) is not None:
            return value
    return None


def cli_adapter(provider: str) -> AgentCliProvider:
    return ClaudeCodeProvider() if provider == CLAUDE_CODE else CodexProvider()


async def cli_health(target: str, *, timeout: float = 60.0) -> CliHealth:
    """A real one-line question to `target` ("claude-code:sonnet"): spends the user's subscription."""
    provider, _, model = target.partition(":")
    return await cli_adapter(provider).health(model, timeout=timeout)


async def cli_readiness(target: str) -> CliReadiness:
    """The free check of `target` ("codex:gpt-5.5"): binary, version, login or key; no model call."""
    provider, _, model = target.partition(":")
    return await cli_adapter(provider).readiness(model)


class CliRow(BaseModel):
    """One `aios doctor` row for a CLI target: can it be called, and what it is (never a token)."""

    target: str
    ok: bool
    detail: str


async def _row(target: str, answer: bool) -> CliRow:
    ready = await cli_readiness(target)
    if not ready.ready:
        return CliRow(target=target, ok=False, detail=f"{ready.problem}" + (f" ({ready.version})" if ready.version else ""))
    detail = f"{ready.version} at {ready.binary}; {ready.credentials}"
    if not answer:
        return CliRow(target=target, ok=True, detail=f"{detail}; not asked a question (AIOS_PROBE_CLI_TARGETS=true to)")
    health = await cli_health(target)
    return CliRow(target=target, ok=health.can_answer, detail=f"{detail}; " + ("answers" if health.can_answer
                                                                              else f"no answer: {health.detail}"))


def doctor_rows(targets: Iterable[str], answer: bool | None = None) -> list[CliRow]:
    """Rows for `aios doctor`: the free readiness check of each CLI target, plus a real one-line question
    when `answer` (default: AIOS_PROBE_CLI_TARGETS) says the user accepts spending their subscription on it."""
    answer = AgentCliSettings().probe_cli_targets if answer is None else answer

    async def all_rows() -> list[CliRow]:
        return [await _row(t, answer) for t in dict.fromkeys(targets)]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # doctor is sync, and may be called from a loop
        return pool.submit(asyncio.run, all_rows()).result()
