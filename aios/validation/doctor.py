"""`aios doctor`: one table of everything that would break a failover, before an outage finds it.

Checks (each row: check, subject, status ok/warn/fail, detail):

    settings       every AIOS_* variable parses (a bad one is a row; the rest run on its default)
    api key        each endpoint a target uses has its key variable set (the value is never shown)
    agent cli      each Claude Code / Codex target: binary, version, login (a real answer only when
                   AIOS_PROBE_CLI_TARGETS=true: it spends the user's subscription)
    policy         the fallback policy parses; a critical skill has a target on another provider
    skill          every skill folder loads (SKILL.md, contract, inputs, compare rule)
    context        knowledge/ fits in AIOS_CONTEXT_MAX_CHARS
    state store    the state settings load and the store reads
    validation     each critical skill was validated on each fallback target, and passed last time
                   (`aios validate` records results in the state table `validations`)
    mcp            .mcp.json and .codex/config.toml carry the same MCP servers
    instructions   AGENTS.md and CLAUDE.md are in step
    deployments    prefect.yaml matches the skills
    state journal  writes journaled during a state-backend outage and not yet replayed
    prefect api    who can use the Prefect API: loopback, or authenticated (see `check_prefect_api`)
    fleet          on more than one host, health, alert bursts, breakers and run records are shared (see `check_fleet`)

Any `fail` makes the command exit 1; `warn` rows are worth a look but do not fail it. A check that
breaks is itself a `fail` row: the doctor always prints its table.
Nothing here needs a Prefect server or calls a model (the `prefect api` row probes one if configured).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, computed_field

from aios.core.policy import FallbackPolicy, Target
from aios.core.triage import Triage
from aios.errors import AiosError, ConfigError
from aios.config.settings import AGENT_CLI_PROVIDERS, Settings, load_settings_leniently
from aios.skills.loader import SKILL_FILE, Skill, load_skill
from aios.validation.compare import CompareRule
from aios.validation.matrix import VALIDATIONS_TABLE, validation_key


class Status(StrEnum):
    ok = "ok"
    warn = "warn"
    fail = "fail"


class Check(BaseModel):
    check: str
    subject: str
    status: Status
    detail: str = ""


class DoctorReport(BaseModel):
    checks: list[Check] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not any(c.status is Status.fail for c in self.checks)

    def add(self, check: str, subject: str, status: Status, detail: str = "") -> None:
        self.checks.append(Check(check=check, subject=subject, status=status, detail=detail))

    def to_json(self) -> dict[str, Any]:
        return {"checks": [c.model_dump(mode="json") for c in self.checks], "ok": self.ok}

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for c in self.checks if c.status is s) for s in Status}


# --------------------------------------------------------------------------- skills and policies


def check_skills(report: DoctorReport, skills_dir: Path) -> list[Skill]:
    """Load every skill folder on its own, so one broken skill does not hide the others."""
    loaded: list[Skill] = []
    folders = sorted(p.parent for p in skills_dir.glob(f"*/{SKILL_FILE}"))
    if not folders:
        report.add("skill", str(skills_dir), Status.warn, "no skills found")
    for folder in folders:
        try:
            skill = load_skill(folder)
            rule = CompareRule.parse(skill.metadata.compare, where=f"{skill.path}: metadata.compare")
        except ConfigError as exc:
            report.add("skill", folder.name, Status.fail, str(exc))
            continue
        loaded.append(skill)
        unknown = rule.unknown_fields(skill.output_schema)
        if unknown:
            report.add(
                "skill", skill.name, Status.warn,
                f"metadata.compare names field(s) the contract does not describe: {', '.join(unknown)}",
            )
        else:
            report.add("skill", skill.name, Status.ok, f"loads (triage {skill.triage.value})")
    return loaded


def skill_policies(report: DoctorReport, settings: Settings, skills: list[Skill]) -> dict[str, FallbackPolicy]:
    """Each skill's fallback policy; a policy that does not parse is a failed row."""
    policies: dict[str, FallbackPolicy] = {}
    try:
        default = settings.policy()
        report.add("policy", "default", Status.ok, " -> ".join(t.key for t in default.targets))
    except AiosError as exc:
        report.add("policy", "default", Status.fail, str(exc))
    for skill in skills:
        try:
            policy = settings.skill_policy(skill)
        except AiosError as exc:
            report.add("policy", skill.name, Status.fail, str(exc))
            continue
        policies[skill.name] = policy
        if skill.triage is Triage.critical:
            others = [t for t in policy.targets if t.provider != policy.primary_provider]
            if not others:
                report.add(
                    "policy", skill.name, Status.warn,
                    f"critical, but every target is on {policy.primary_provider}: an outage there stops it",
                )
    return policies


def check_keys(report: DoctorReport, settings: Settings, policies: dict[str, FallbackPolicy]) -> None:
    """One row per endpoint some target calls: is its key variable set? (never its value)."""
    users: dict[str, list[str]] = {}
    for policy in policies.values():
        for target in policy.targets:
            users.setdefault(target.provider, [])
            if target.key not in users[target.provider]:
                users[target.provider].append(target.key)
    try:
        for target in settings.policy().targets:
            users.setdefault(target.provider, [])
            if target.key not in users[target.provider]:
                users[target.provider].append(target.key)
    except AiosError:
        pass  # already reported as a policy row
    for name in sorted(users):
        if name in AGENT_CLI_PROVIDERS:
            continue  # the CLI's own login: see the "agent cli" rows
        endpoint = settings.endpoints.get(name)
        if endpoint is None:
            report.add("api key", name, Status.fail, "no such endpoint (add it to AIOS_EXTRA_ENDPOINTS)")
        elif endpoint.api_key():
            report.add("api key", name, Status.ok, f"{endpoint.api_key_env} is set")
        else:
            report.add(
                "api key", name, Status.fail,
                f"{endpoint.api_key_env} is not set: {', '.join(users[name])} cannot be called",
            )


def check_agent_clis(report: DoctorReport, policies: dict[str, FallbackPolicy]) -> None:
    """One row per Claude Code / Codex target in the chains: binary, version, login (never a token)."""
    from aios.providers.agent_cli import doctor_rows

    targets = [t.key for p in policies.values() for t in p.targets if t.provider in AGENT_CLI_PROVIDERS]
    for row in doctor_rows(targets):
        report.add("agent cli", row.target, Status.ok if row.ok else Status.fail, row.detail)


def fallback_targets(policy: FallbackPolicy) -> list[Target]:
    """The targets a failover can reach: everything after the first in the chain."""
    return list(dict.fromkeys(policy.targets[1:]))


def check_settings(report: DoctorReport) -> Settings:
    """One row per bad AIOS_* variable; the other checks go on with that variable at its default."""
    settings, problems = load_settings_leniently()
    for variable, problem in problems:
        report.add("settings", variable, Status.fail, problem)
    if not problems:
        report.add("settings", "AIOS_*", Status.ok, "every setting parses")
    return settings


def check_context(report: DoctorReport, settings: Settings) -> None:
    """knowledge/ over the budget fails every run; memory over it is trimmed, so only knowledge fails."""
    from aios.skills.prompt_context import assemble_context

    try:
        context = assemble_context(settings.home, settings.context_max_chars, settings.memory_path)
    except AiosError as exc:
        report.add("context", "knowledge/", Status.fail, str(exc))
        return
    trimmed = f"; {context.trimmed_memory_lines} oldest memory line(s) trimmed" if context.trimmed_memory_lines else ""
    report.add(
        "context", "knowledge/", Status.ok,
        f"{len(context.text)} of {settings.context_max_chars} characters (AIOS_CONTEXT_MAX_CHARS){trimmed}",
    )


def check_state(report: DoctorReport, open_store: Callable[[], Any]) -> Any | None:
    """The store every run records in: its settings load and it reads. Returns it, or None."""
    from aios.runs.record import RUNS_TABLE

    try:
        store = open_store()
        store.list(RUNS_TABLE)
    except AiosError as exc:
        report.add("state store", "runs table", Status.fail, str(exc))
        return None
    report.add("state store", "runs table", Status.ok, f"reads {getattr(store, 'where', store)}")
    return store


def check_validations(
    report: DoctorReport, skills: list[Skill], policies: dict[str, FallbackPolicy], store: Any | None
) -> None:
    """Critical skills: validated on every fallback target, and the last validation passed?"""
    critical = [s for s in skills if s.triage is Triage.critical and s.name in policies]
    if not critical or store is None:  # no store: its own row says why
        return
    try:
        records = {r.key: r for r in store.list(VALIDATIONS_TABLE)}  # one read, even on a remote store
    except AiosError as exc:
        report.add("validation", "state store", Status.warn, f"cannot read validation results: {exc}")
        return
    for skill in critical:
        targets = fallback_targets(policies[skill.name])
        if not targets:
            continue
        for target in targets:
            subject = f"{skill.name} on {target.key}"
            record = records.get(validation_key(skill.name, target.key))
            if record is None:
                report.add(
                    "validation", subject, Status.warn,
                    f"never validated (run `aios validate {skill.name}`)",
                )
                continue
            data = record.data
            when = str(data.get("validated_at", record.updated_at.isoformat()))[:19]
            rate = f"{data.get('passed', '?')}/{data.get('runs', '?')} runs passed"
            if data.get("ok"):
                report.add("validation", subject, Status.ok, f"passed at {when} ({rate})")
            else:
                problems = "; ".join(data.get("problems") or []) or f"{data.get('disagreements', 0)} disagreement(s)"
                report.add("validation", subject, Status.fail, f"last validation failed at {when}: {rate}; {problems}"[:400])


# --------------------------------------------------------------------------- portability and deployments


def check_mcp(report: DoctorReport, root: Path) -> None:
    from aios.portability.mcp import CLAUDE_MCP_FILE, CODEX_MCP_FILE, sync_mcp

    claude, codex = root / CLAUDE_MCP_FILE, root / CODEX_MCP_FILE
    if not claude.exists() and not codex.exists():
        report.add("mcp", "MCP servers", Status.ok, "no .mcp.json or .codex/config.toml (no MCP servers)")
        return
    source = "claude" if claude.exists() else "codex"
    subject = ".mcp.json -> .codex/config.toml" if source == "claude" else ".codex/config.toml -> .mcp.json"
    try:
        result = sync_mcp(root, source, check=True)
    except (AiosError, OSError) as exc:
        report.add("mcp", subject, Status.fail, str(exc))
        return
    if result.problems:
        report.add("mcp", subject, Status.fail, "; ".join(result.problems))
    if result.drift:
        report.add("mcp", subject, Status.fail, f"drift: {'; '.join(result.diff_lines())} (run `aios sync mcp`)")
    elif result.warnings:
        report.add("mcp", subject, Status.warn, "; ".join(result.warnings))
    elif not result.problems:
        report.add("mcp", subject, Status.ok, f"in sync ({len(result.changes)} server(s))")


def check_instructions(report: DoctorReport, root: Path) -> None:
    from aios.portability.agents import AGENTS_MD, CLAUDE_MD, sync_agents

    if not (root / AGENTS_MD).exists() and not (root / CLAUDE_MD).exists():
        report.add("instructions", "AGENTS.md / CLAUDE.md", Status.warn, "neither file exists: no model gets project instructions")
        return
    try:
        result = sync_agents(root, check=True)
    except (AiosError, OSError) as exc:
        source = "CLAUDE.md" if not (root / AGENTS_MD).exists() else "AGENTS.md"
        report.add("instructions", source, Status.fail, str(exc))
        return
    subject = f"{'AGENTS.md' if result.source == 'agents' else 'CLAUDE.md'} -> {result.target.name}"
    if result.drift:
        report.add("instructions", subject, Status.fail, f"{result.message} (run `aios sync agents`)")
    elif result.warnings:
        report.add("instructions", subject, Status.warn, "; ".join(result.warnings))
    else:
        report.add("instructions", subject, Status.ok, result.message)


def check_deployments(report: DoctorReport, root: Path) -> None:
    try:
        from deployments import prefect_yaml
    except ImportError as exc:
        report.add("deployments", "prefect.yaml", Status.warn, f"cannot check: {exc} (reinstall aios: pip install -e .)")
        return
    try:
        problems = prefect_yaml.check(root)
    except (AiosError, OSError) as exc:
        report.add("deployments", "prefect.yaml", Status.fail, f"cannot check: {exc}")
        return
    if problems:
        report.add("deployments", "prefect.yaml", Status.fail, "; ".join(problems) + " (run `aios deploy --write`)")
    else:
        report.add("deployments", "prefect.yaml", Status.ok, "in step with the skills")


def check_journal(report: DoctorReport) -> None:
    try:
        from aios.state import journal
    except ImportError:
        return
    pending = getattr(journal, "pending", None)
    if pending is None:
        return
    from aios.state import load_state_settings

    try:
        state_settings = load_state_settings()
    except AiosError:
        return  # the state store row already names the bad AIOS_STATE_* variable
    try:
        entries = pending(state_settings)
    except Exception as exc:  # noqa: BLE001 - a doctor reports, it does not crash
        report.add("state journal", "journal", Status.warn, f"cannot read the journal: {exc}")
        return
    if entries:
        stores = sorted({getattr(e, "store", "?") for e in entries})
        report.add(
            "state journal", "journal", Status.warn,
            f"{len(entries)} write(s) not yet replayed to {', '.join(stores)} (run `aios state sync`)",
        )
    else:
        report.add("state journal", "journal", Status.ok, "no pending writes")
    conflicts = getattr(journal, "conflicts", None)
    if conflicts is not None:
        try:
            path = state_settings.journal_file()
            exists = path.with_name(path.stem + ".conflicts.jsonl").exists()  # reading it takes a lock
            found = conflicts(state_settings) if exists else []
        except Exception:  # noqa: BLE001
            found = []
        if found:
            report.add("state journal", "conflicts", Status.warn, f"{len(found)} journaled write(s) lost a version conflict")


# --------------------------------------------------------------------------- prefect api access (issue 16)

API_PROBE_PATH = "/admin/version"  # read-only and cheap; behind Prefect's auth middleware like every /api route


def judge_prefect_api(url: str, auth_string_set: bool, anonymous: int | None, authenticated: int | None) -> tuple[Status, str]:
    """The verdict on who can use the API at `url`, from the configuration and two probe answers.

    `anonymous`: the status of GET /api/admin/version without credentials (None: unreachable);
    `authenticated`: the same with PREFECT_API_AUTH_STRING (None: not set or not probed).
    Prefect's basic auth (PREFECT_SERVER_API_AUTH_STRING) answers 401 on every /api route except GET
    /api/health and /api/ready, so a 200 here means runs, deployments, work queues and Secret block
    values are open to anyone who reaches the URL. A loopback URL is only reachable from this host,
    so an open server there is fine (the doctor cannot see whether the same server also listens on other
    interfaces: bind it with --host 127.0.0.1). Basic auth over http:// beyond loopback sends the string
    in clear, so it is a warning.
    """
    from urllib.parse import urlsplit

    from aios.loopback import is_loopback

    parts = urlsplit(url)
    local = is_loopback(parts.hostname)
    if not local and not auth_string_set and anonymous != 401:
        if anonymous == 200:
            return Status.fail, (
                f"{parts.hostname} is beyond this machine and the server answers without authentication: anyone who "
                "reaches it can read Secret blocks and start runs (set PREFECT_SERVER_API_AUTH_STRING on the server "
                "and PREFECT_API_AUTH_STRING here, or bind it to 127.0.0.1 behind a TLS proxy)"
            )
        return Status.fail, (
            f"{parts.hostname} is beyond this machine and PREFECT_API_AUTH_STRING is not set "
            "(set PREFECT_SERVER_API_AUTH_STRING on the server and PREFECT_API_AUTH_STRING here)"
        )
    if anonymous is None:
        return Status.warn, "cannot reach the server: access not probed"
    if anonymous == 200:
        if local:
            extra = " (PREFECT_API_AUTH_STRING is set but the server does not ask for it)" if auth_string_set else ""
            return Status.ok, f"loopback only; the server answers without authentication{extra}"
        return Status.fail, (
            f"the server at {parts.hostname} answers without authentication although PREFECT_API_AUTH_STRING is set "
            "here: set PREFECT_SERVER_API_AUTH_STRING on the server"
        )
    if anonymous != 401:
        return Status.warn, f"unexpected answer {anonymous} to an unauthenticated GET /api{API_PROBE_PATH}"
    if not auth_string_set:
        return Status.fail, "the server requires authentication and PREFECT_API_AUTH_STRING is not set: every command gets 401"
    if authenticated == 401:
        return Status.fail, "the server rejects PREFECT_API_AUTH_STRING (401): it differs from the server's PREFECT_SERVER_API_AUTH_STRING"
    if authenticated != 200:
        return Status.warn, f"unexpected answer {authenticated} to an authenticated GET /api{API_PROBE_PATH}"
    if not local and parts.scheme != "https":
        return Status.warn, "authenticated, but over plain http: the auth string crosses the network in clear (put a TLS proxy in front)"
    return Status.ok, "the server refuses unauthenticated requests (401) and accepts PREFECT_API_AUTH_STRING"


def check_prefect_api(report: DoctorReport, timeout: float = 3.0) -> None:
    """One `prefect api` row for PREFECT_API_URL: probe it without and with PREFECT_API_AUTH_STRING."""
    import base64

    import httpx
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    if not api.url:
        report.add("prefect api", "PREFECT_API_URL", Status.ok, "not set: commands use a temporary local server")
        return
    url = api.url.rstrip("/")
    auth = api.auth_string.get_secret_value() if api.auth_string else ""
    verify: bool | str = False if api.tls_insecure_skip_verify else (api.ssl_cert_file or True)

    def probe(headers: dict[str, str]) -> int | None:
        try:
            with httpx.Client(timeout=timeout, verify=verify) as client:
                return client.get(url + API_PROBE_PATH, headers=headers).status_code
        except httpx.HTTPError:
            return None

    anonymous = probe({})
    authenticated = None
    if auth and anonymous == 401:
        authenticated = probe({"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()})
    status, detail = judge_prefect_api(url, bool(auth), anonymous, authenticated)
    report.add("prefect api", url, status, detail)


# --------------------------------------------------------------------------- all together


def check_fleet(report: DoctorReport, settings: Settings | None = None) -> None:
    """Workers on several hosts must share one operational state: the rule every run obeys (`fleet_problem`)."""
    from aios.outage import health_store

    if settings is None:
        settings = load_settings_leniently()[0]
    if problem := health_store.fleet_problem(settings):
        report.add("fleet", "operational state", Status.fail, problem)
    elif health_store.fleet_mode() == "multi":
        report.add("fleet", "operational state", Status.ok, "several hosts: no run records or breakers in a local file")
    else:
        report.add("fleet", "operational state", Status.ok, "one host (set AIOS_FLEET=multi when workers run elsewhere)")


def run_doctor(settings: Settings | None = None, open_store: Callable[[], Any] | None = None) -> DoctorReport:
    """Every check, in the order a reader fixes them; without `settings`, the environment's (checked)."""
    if open_store is None:
        from aios.state import open_store as default_open_store

        open_store = default_open_store
    report = DoctorReport()
    if settings is None:
        settings = check_settings(report)
    root = settings.home

    def guarded(check: str, run: Callable[[], Any], default: Any = None) -> Any:
        try:
            return run()
        except Exception as exc:  # noqa: BLE001 - a doctor reports, it does not crash
            report.add(check, "(the check itself)", Status.fail, f"{type(exc).__name__}: {exc}")
            return default

    skills = guarded("skill", lambda: check_skills(report, settings.skills_dir), [])
    policies = guarded("policy", lambda: skill_policies(report, settings, skills), {})
    guarded("api key", lambda: check_keys(report, settings, policies))
    guarded("agent cli", lambda: check_agent_clis(report, policies))
    guarded("context", lambda: check_context(report, settings))
    store = guarded("state store", lambda: check_state(report, open_store))
    guarded("validation", lambda: check_validations(report, skills, policies, store))
    guarded("mcp", lambda: check_mcp(report, root))
    guarded("instructions", lambda: check_instructions(report, root))
    guarded("deployments", lambda: check_deployments(report, root))
    guarded("state journal", lambda: check_journal(report))
    guarded("prefect api", lambda: check_prefect_api(report))
    guarded("fleet", lambda: check_fleet(report, settings))
    order = {"settings": 0, "api key": 1, "policy": 2, "skill": 3, "context": 4, "state store": 5, "validation": 6}
    report.checks.sort(key=lambda c: order.get(c.check, 7))  # stable: the rest keep their order
    return report


__all__ = ["Check", "DoctorReport", "Status", "run_doctor"]
