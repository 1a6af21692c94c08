"""MCP server configs: Claude Code's project `.mcp.json` <-> Codex's project `.codex/config.toml`.

Both files are read into a neutral `McpServer` model and written back out. The neutral model
uses Claude's `${VAR}` syntax as its only template language: a string without `${` is a literal.
The three references Codex can express have fields of their own:

    Claude `.mcp.json`                      neutral            Codex `config.toml`
    env  "X": "${X}"                        env_passthrough    env_vars = ["X"]
    header "Authorization": "Bearer ${T}"   bearer_env         bearer_token_env_var = "T"
    header "H": "${V}"                      header_env         env_http_headers = {H = "V"}

Everything else one side cannot express is reported as a warning (never dropped silently):
SSE servers (Codex has none), `${VAR:-default}` (the default is dropped), `${VAR}` inside a
larger string or in command/args/url (Codex would see the text literally), Codex-only keys
(cwd, timeouts, enabled, enabled_tools, disabled_tools, unknown keys) going to Claude, and
unknown Claude keys going to Codex. Keys the target side alone has survive a sync for servers
that still exist, and servers the target alone has are kept and listed (`prune=True` removes
them). A literal value that looks like a secret is never copied: it is reported as a problem
(exit code 1 in the CLI) and the sync writes nothing, so move it to an environment variable.

The TOML side is edited in place with tomlkit: only `mcp_servers.*` tables change; comments,
order and every other key (`model = ...`, `[profiles.*]`) survive. Nothing is written when a
file is malformed, nothing is written when nothing changed, and writes are atomic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import tomlkit
from pydantic import BaseModel, ConfigDict, Field
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import InlineTable, Table

from aios.files import atomic_write_text, read_user_text, read_user_text_or_none
from aios.errors import ConfigError
from aios.portability.secrets import looks_like_secret

CLAUDE_MCP_FILE = Path(".mcp.json")
CODEX_MCP_FILE = Path(".codex") / "config.toml"

Side = Literal["claude", "codex"]

_VAR = r"[A-Za-z_][A-Za-z0-9_]*"
WHOLE_REF = re.compile(rf"^\$\{{({_VAR})(?::-(.*))?\}}$", re.DOTALL)
BEARER_REF = re.compile(rf"^Bearer[ \t]+\$\{{({_VAR})(?::-(.*))?\}}$", re.DOTALL | re.IGNORECASE)
CODEX_SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # Codex refuses other server names

# Keys each side's writer owns; everything else in an existing entry is kept as it is.
CLAUDE_MAPPED_KEYS = ("type", "command", "args", "env", "url", "headers")
CODEX_MAPPED_KEYS = (
    "command", "args", "env", "env_vars", "url", "bearer_token_env_var", "http_headers", "env_http_headers",
)
CODEX_ONLY_KEYS = ("cwd", "startup_timeout_sec", "tool_timeout_sec", "enabled", "enabled_tools", "disabled_tools")


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"  # streamable HTTP
    sse = "sse"  # Claude Code only


class McpServer(BaseModel):
    """One MCP server, independent of either tool's file format."""

    model_config = ConfigDict(extra="forbid")

    name: str
    transport: Transport = Transport.stdio
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)  # literal values (or Claude `${...}` templates)
    env_passthrough: list[str] = Field(default_factory=list)  # variables passed through under their own name
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # literal values (or Claude templates)
    header_env: dict[str, str] = Field(default_factory=dict)  # header name -> environment variable
    bearer_env: str | None = None  # Authorization: Bearer $VAR
    startup_timeout_sec: float | None = None
    tool_timeout_sec: float | None = None
    enabled: bool | None = None  # None: the tool's default (enabled)
    enabled_tools: list[str] | None = None
    disabled_tools: list[str] | None = None
    # Keys only one side understands, by side ("claude" / "codex") -> raw key -> raw value.
    extras: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ServerChange(BaseModel):
    name: str
    action: Literal["add", "update", "remove", "keep"]
    transport: str = ""
    fields: list[str] = Field(default_factory=list)

    def line(self, done: bool = False) -> str:
        """One line of the diff summary: as drift (--check) or, with done=True, as what was written."""
        if self.action == "add":
            return f"+ {self.name}: added ({self.transport})" if done else f"+ {self.name}: missing ({self.transport})"
        if self.action == "remove":
            return f"- {self.name}: removed" if done else f"- {self.name}: not in the source"
        if self.action == "update":
            return f"~ {self.name}: {'updated' if done else 'differs in'} {', '.join(self.fields)}"
        return f"= {self.name}: in sync"


class McpSyncResult(BaseModel):
    source: Side
    source_path: Path
    target_path: Path
    changes: list[ServerChange] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)  # source servers the target cannot express
    warnings: list[str] = Field(default_factory=list)  # "server: what was not carried over and why"
    problems: list[str] = Field(default_factory=list)  # literal secrets refused: nothing is written
    only_in_target: list[str] = Field(default_factory=list)  # the target's own servers, kept (prune removes)
    written: bool = False

    @property
    def drift(self) -> bool:
        return any(c.action != "keep" for c in self.changes)

    def diff_lines(self, done: bool = False) -> list[str]:
        return [c.line(done) for c in self.changes if c.action != "keep"]

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)


# --------------------------------------------------------------------------- type checks


def _opt_str(raw: dict[str, Any], key: str, path: Path, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(path, f"must be a string, not {_kind(value)}", f"{where}.{key}")
    return value


def _str_list(raw: dict[str, Any], key: str, path: Path, where: str) -> list[str] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(path, "must be a list of strings", f"{where}.{key}")
    return list(value)


def _str_map(raw: dict[str, Any], key: str, path: Path, where: str) -> dict[str, str]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(path, "must map names to strings", f"{where}.{key}")
    return {str(k): v for k, v in value.items()}


def _number(raw: dict[str, Any], key: str, path: Path, where: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, f"must be a number of seconds, not {_kind(value)}", f"{where}.{key}")
    return float(value)


def _copy_unless_secret(name: str, what: str, key: str, value: str, into: dict[str, str], problems: list[str]) -> None:
    """Copy a literal env value or header into `into`; a literal secret is refused (a problem), never copied."""
    if looks_like_secret(key, value):
        problems.append(f"{name}: {what} {key} holds a literal secret; not copied (use an environment variable)")
    else:
        into[key] = value


def _parse_servers(
    raw_servers: dict[str, Any], parse: Callable[[str, Any, Path], tuple[McpServer, list[str]]], path: Path
) -> tuple[dict[str, McpServer], list[str]]:
    """Every entry through `parse`: servers by name in file order, and all their warnings."""
    servers: dict[str, McpServer] = {}
    warnings: list[str] = []
    for name, raw in raw_servers.items():
        servers[name], more = parse(name, raw, path)
        warnings += more
    return servers, warnings


def _kind(value: Any) -> str:
    return {
        bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object",
    }.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- Claude side


def server_from_claude(name: str, raw: Any, path: Path) -> tuple[McpServer, list[str]]:
    """One `mcpServers` entry of `.mcp.json` -> neutral server (+ warnings); ConfigError if malformed."""
    where = f"mcpServers.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(path, f"must be an object, not {_kind(raw)}", where)
    warnings: list[str] = []
    kind = _opt_str(raw, "type", path, where)
    command = _opt_str(raw, "command", path, where)
    url = _opt_str(raw, "url", path, where)
    if kind is None:
        if command is not None and url is not None:
            raise ConfigError(path, "has both command and url (set type: stdio, http or sse)", where)
        if command is not None:
            transport = Transport.stdio
        elif url is not None:
            transport = Transport.http
            warnings.append(f"{name}: no 'type' in .mcp.json; treated as http (write \"type\": \"http\")")
        else:
            raise ConfigError(path, "needs a command (stdio) or a url (http/sse)", where)
    else:
        try:
            transport = Transport(kind)
        except ValueError:
            raise ConfigError(path, f"'{kind}' is not stdio, http or sse", f"{where}.type") from None
        if transport is Transport.stdio and command is None:
            raise ConfigError(path, "a stdio server needs a command", where)
        if transport is not Transport.stdio and url is None:
            raise ConfigError(path, f"an {transport} server needs a url", where)

    server = McpServer(name=name, transport=transport)
    known: set[str] = {"type"}
    if transport is Transport.stdio:
        known |= {"command", "args", "env"}
        server.command = command
        server.args = _str_list(raw, "args", path, where) or []
        for key, value in _str_map(raw, "env", path, where).items():
            m = WHOLE_REF.match(value)
            if m and m.group(1) == key and m.group(2) is None:
                server.env_passthrough.append(key)
            else:
                server.env[key] = value
    else:
        known |= {"url", "headers"}
        server.url = url
        for header, value in _str_map(raw, "headers", path, where).items():
            bearer = BEARER_REF.match(value)
            whole = WHOLE_REF.match(value)
            if header.lower() == "authorization" and bearer and bearer.group(2) is None and server.bearer_env is None:
                server.bearer_env = bearer.group(1)
            elif whole and whole.group(2) is None:
                server.header_env[header] = whole.group(1)
            else:
                server.headers[header] = value
    extras = {k: v for k, v in raw.items() if k not in known}
    if extras:
        server.extras["claude"] = extras
    return server, warnings


def server_to_claude(server: McpServer) -> tuple[dict[str, Any], list[str], list[str]]:
    """Neutral server -> `.mcp.json` entry, warnings (what Claude cannot express), problems (secrets)."""
    name = server.name
    warnings: list[str] = []
    problems: list[str] = []
    out: dict[str, Any] = {"type": server.transport.value}
    if server.transport is Transport.stdio:
        out["command"] = server.command
        if server.args:
            out["args"] = list(server.args)
        env: dict[str, str] = {}
        for key, value in server.env.items():
            _copy_unless_secret(name, "env", key, value, env, problems)
        for var in server.env_passthrough:
            env.setdefault(var, f"${{{var}}}")
        if env:
            out["env"] = env
    else:
        out["url"] = server.url
        headers: dict[str, str] = {}
        for header, value in server.headers.items():
            _copy_unless_secret(name, "header", header, value, headers, problems)
        for header, var in server.header_env.items():
            headers[header] = f"${{{var}}}"
        if server.bearer_env:
            headers["Authorization"] = f"Bearer ${{{server.bearer_env}}}"
        if headers:
            out["headers"] = headers
    if server.transport is Transport.stdio:
        stray = [k for k in ("headers", "header_env", "bearer_env") if getattr(server, k)]
    else:
        stray = [k for k in ("args", "env", "env_passthrough") if getattr(server, k)]
    for key in stray:
        warnings.append(f"{name}: '{key}' does not apply to a {server.transport} server; not copied")
    for key in CODEX_ONLY_KEYS:
        value = getattr(server, key)
        if key == "enabled" and value is False:
            warnings.append(f"{name}: disabled in Codex (enabled = false), but .mcp.json has no switch; Claude Code will start it")
        elif value is not None:
            warnings.append(f"{name}: Codex-only '{key}' cannot be expressed in .mcp.json; not copied")
    for key in server.extras.get("codex", {}):
        warnings.append(f"{name}: Codex key '{key}' has no .mcp.json equivalent; not copied")
    for key, value in server.extras.get("claude", {}).items():
        out.setdefault(key, value)
    return out, warnings, problems


def read_claude(path: Path) -> tuple[dict[str, Any], dict[str, McpServer], list[str]]:
    """Parse `.mcp.json`: (whole document, servers by name in file order, warnings)."""
    text = read_user_text(path)
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(path, f"must be a JSON object, not {_kind(data)}")
    raw_servers = data.get("mcpServers", {})
    if not isinstance(raw_servers, dict):
        raise ConfigError(path, f"must be an object mapping server names to servers, not {_kind(raw_servers)}", "mcpServers")
    servers, warnings = _parse_servers(raw_servers, server_from_claude, path)
    return data, servers, warnings


# --------------------------------------------------------------------------- Codex side


def server_from_codex(name: str, raw: Any, path: Path) -> tuple[McpServer, list[str]]:
    """One `[mcp_servers.NAME]` table -> neutral server (+ warnings); ConfigError if malformed."""
    where = f"mcp_servers.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(path, f"must be a table, not {_kind(raw)}", where)
    warnings: list[str] = []
    command = _opt_str(raw, "command", path, where)
    url = _opt_str(raw, "url", path, where)
    if command is not None and url is not None:
        raise ConfigError(path, "has both command and url (one server is either stdio or HTTP)", where)
    if command is None and url is None:
        raise ConfigError(path, "needs a command (stdio) or a url (streamable HTTP)", where)
    server = McpServer(name=name, transport=Transport.stdio if command is not None else Transport.http)
    server.command = command
    server.url = url
    server.args = _str_list(raw, "args", path, where) or []
    server.env = _str_map(raw, "env", path, where)
    server.env_passthrough = _str_list(raw, "env_vars", path, where) or []
    server.cwd = _opt_str(raw, "cwd", path, where)
    server.bearer_env = _opt_str(raw, "bearer_token_env_var", path, where)
    server.headers = _str_map(raw, "http_headers", path, where)
    server.header_env = _str_map(raw, "env_http_headers", path, where)
    server.startup_timeout_sec = _number(raw, "startup_timeout_sec", path, where)
    server.tool_timeout_sec = _number(raw, "tool_timeout_sec", path, where)
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ConfigError(path, f"must be true or false, not {_kind(enabled)}", f"{where}.enabled")
    server.enabled = enabled
    server.enabled_tools = _str_list(raw, "enabled_tools", path, where)
    server.disabled_tools = _str_list(raw, "disabled_tools", path, where)
    known = set(CODEX_MAPPED_KEYS) | set(CODEX_ONLY_KEYS)
    extras = {k: v for k, v in raw.items() if k not in known}
    if extras:
        server.extras["codex"] = extras
    for key, value in [*server.env.items(), *server.headers.items()]:
        if "${" in value:
            warnings.append(f"{name}: '{key}' contains '${{' which Codex passes literally but Claude Code expands")
    return server, warnings


def _template_warning(name: str, what: str) -> str:
    return f"{name}: {what} uses ${{...}}, which Codex does not expand; written literally"


def server_to_codex(server: McpServer) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    """Neutral server -> `[mcp_servers.NAME]` content (None if Codex cannot hold it), warnings, problems."""
    name = server.name
    warnings: list[str] = []
    problems: list[str] = []
    if server.transport is Transport.sse:
        return None, [f"{name}: Codex has no SSE transport; server not written to config.toml"], []
    if not CODEX_SERVER_NAME.match(name):
        return None, [f"{name}: Codex server names allow only letters, digits, '_' and '-'; server not written"], []
    out: dict[str, Any] = {}
    if server.transport is Transport.stdio:
        out["command"] = server.command
        if "${" in (server.command or ""):
            warnings.append(_template_warning(name, "command"))
        if server.args:
            out["args"] = list(server.args)
            if any("${" in a for a in server.args):
                warnings.append(_template_warning(name, "args"))
        env: dict[str, str] = {}
        passthrough = list(server.env_passthrough)
        for key, value in server.env.items():
            m = WHOLE_REF.match(value)
            if "${" not in value:
                _copy_unless_secret(name, "env", key, value, env, problems)
            elif m and m.group(1) == key:
                passthrough.append(key)
                warnings.append(f"{name}: env {key}: Codex has no ${{VAR:-default}}; passed through without the default")
            else:
                warnings.append(f"{name}: env {key} = '{value}' cannot be expressed in Codex (only VAR=${{VAR}}); not copied")
        if env:
            out["env"] = env
        if passthrough:
            out["env_vars"] = list(dict.fromkeys(passthrough))
    else:
        out["url"] = server.url
        if "${" in (server.url or ""):
            warnings.append(_template_warning(name, "url"))
        bearer = server.bearer_env
        headers: dict[str, str] = {}
        header_env = dict(server.header_env)
        for header, value in server.headers.items():
            b = BEARER_REF.match(value)
            m = WHOLE_REF.match(value)
            if "${" not in value:
                _copy_unless_secret(name, "header", header, value, headers, problems)
            elif header.lower() == "authorization" and b and bearer is None:
                bearer = b.group(1)
                warnings.append(f"{name}: header {header}: Codex has no ${{VAR:-default}}; bearer token read without the default")
            elif m:
                header_env[header] = m.group(1)
                warnings.append(f"{name}: header {header}: Codex has no ${{VAR:-default}}; read from {m.group(1)} without the default")
            else:
                warnings.append(
                    f"{name}: header {header} = '{value}' cannot be expressed in Codex "
                    "(only a whole ${VAR} or 'Bearer ${VAR}'); not copied"
                )
        if bearer:
            out["bearer_token_env_var"] = bearer
        if headers:
            out["http_headers"] = headers
        if header_env:
            out["env_http_headers"] = header_env
    for key in CODEX_ONLY_KEYS:
        value = getattr(server, key)
        if value is not None and key not in out:
            out[key] = value
    for key in server.extras.get("claude", {}):
        warnings.append(f"{name}: .mcp.json key '{key}' has no Codex equivalent; not copied")
    for key, value in server.extras.get("codex", {}).items():
        out.setdefault(key, value)
    return out, warnings, problems


def read_codex(path: Path) -> tuple[tomlkit.TOMLDocument, dict[str, McpServer], list[str]]:
    """Parse `config.toml` (a missing file is an empty document): (document, servers, warnings)."""
    text = read_user_text_or_none(path) or ""
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(path, f"not valid TOML ({exc})") from None
    raw_servers = doc.get("mcp_servers", {})
    if not isinstance(raw_servers, dict):
        raise ConfigError(path, f"must be a table of servers, not {_kind(raw_servers)}", "mcp_servers")
    servers, warnings = _parse_servers({name: _plain(raw) for name, raw in raw_servers.items()}, server_from_codex, path)
    return doc, servers, warnings


def _plain(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value


# --------------------------------------------------------------------------- rendering helpers


def to_claude_json(servers: list[McpServer]) -> tuple[dict[str, Any], list[str], list[str]]:
    """A fresh `.mcp.json` document for these servers (+ warnings, problems)."""
    out: dict[str, Any] = {}
    warnings: list[str] = []
    problems: list[str] = []
    for server in servers:
        entry, w, p = server_to_claude(server)
        out[server.name] = entry
        warnings += w
        problems += p
    return {"mcpServers": out}, warnings, problems


def to_codex_toml(servers: list[McpServer]) -> tuple[str, list[str], list[str]]:
    """A fresh `config.toml` text holding only these servers (+ warnings, problems)."""
    doc = tomlkit.document()
    warnings: list[str] = []
    problems: list[str] = []
    for server in servers:
        entry, w, p = server_to_codex(server)
        warnings += w
        problems += p
        if entry is not None:
            _add_server_table(doc, server.name, entry)
    return _tidy(tomlkit.dumps(doc)), warnings, problems


def _tidy(text: str) -> str:
    """One newline at the end of the file (new tables carry a blank line after them)."""
    return text.rstrip("\n") + "\n" if text.strip() else ""


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _toml_value(value: Any) -> Any:
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        for k, v in value.items():
            table[k] = _toml_value(v)
        return table
    return value


def _add_server_table(doc: Any, name: str, entry: dict[str, Any]) -> None:
    servers = doc.get("mcp_servers")
    if servers is None:
        servers = tomlkit.table(is_super_table=True)
        doc["mcp_servers"] = servers
    table = tomlkit.table()
    for key, value in entry.items():
        table[key] = _toml_value(value)
    table.add(tomlkit.nl())
    servers[name] = table


def _set_map(container: Any, key: str, mapping: dict[str, Any]) -> None:
    current = container.get(key)
    if isinstance(current, (Table, InlineTable)):
        for k in [k for k in current if k not in mapping]:
            del current[k]
        for k, v in mapping.items():
            if _plain(current.get(k)) != v:
                current[k] = _toml_value(v)
    else:
        container[key] = _toml_value(mapping)


def _update_server_table(table: Any, entry: dict[str, Any]) -> None:
    """Rewrite only the keys Claude can express; leave Codex-only and unknown keys alone."""
    for key in CODEX_MAPPED_KEYS:
        if key not in entry:
            if key in table:
                del table[key]
            continue
        value = entry[key]
        if _plain(table.get(key)) == value:
            continue
        if isinstance(value, dict):
            _set_map(table, key, value)
        else:
            table[key] = _toml_value(value)


def _changed_fields(old: McpServer, new: McpServer) -> list[str]:
    a, b = old.model_dump(), new.model_dump()
    return [k for k in a if a[k] != b[k]]


# --------------------------------------------------------------------------- sync


def sync_mcp(root: Path | str, source: Side = "claude", check: bool = False, prune: bool = False) -> McpSyncResult:
    """Make the other tool's MCP config follow `source`'s; with check=True only report the drift.

    Servers only the target has are kept and listed in `only_in_target` (prune=True removes them).
    Both files are parsed before anything is written, so a malformed file writes nothing, and a
    sync that finds a problem (a literal secret) writes nothing either.
    """
    root = Path(root)
    claude_path, codex_path = root / CLAUDE_MCP_FILE, root / CODEX_MCP_FILE
    if source == "claude":
        return _claude_to_codex(claude_path, codex_path, check, prune)
    if source == "codex":
        return _codex_to_claude(codex_path, claude_path, check, prune)
    raise ConfigError("--from", f"'{source}' is not claude or codex")


def _claude_to_codex(claude_path: Path, codex_path: Path, check: bool, prune: bool) -> McpSyncResult:
    _, source, warnings = read_claude(claude_path)
    doc, target, _ = read_codex(codex_path)
    result = McpSyncResult(source="claude", source_path=claude_path, target_path=codex_path, warnings=warnings)
    wanted: dict[str, dict[str, Any]] = {}
    for name, server in source.items():
        entry, w, p = server_to_codex(server)
        result.warnings += w
        result.problems += p
        if entry is None:
            result.skipped.append(name)
            if name in target:
                result.warnings.append(f"{name}: the existing config.toml entry is left as it is")
        else:
            wanted[name] = entry
    for name, entry in wanted.items():
        if name not in target:
            result.changes.append(ServerChange(name=name, action="add", transport=source[name].transport.value))
            continue
        current = _plain(doc["mcp_servers"][name])
        merged = {k: v for k, v in current.items() if k not in CODEX_MAPPED_KEYS} | {
            k: v for k, v in entry.items() if k in CODEX_MAPPED_KEYS
        }
        new_server, _ = server_from_codex(name, merged, codex_path)
        fields = _changed_fields(target[name], new_server)
        result.changes.append(ServerChange(name=name, action="update" if fields else "keep", fields=fields))
    for name in target:
        if name not in wanted and name not in result.skipped:
            if prune:
                result.changes.append(ServerChange(name=name, action="remove"))
            else:
                result.only_in_target.append(name)
    if check or not result.drift or result.problems:
        return result
    for change in result.changes:
        if change.action == "add":
            _add_server_table(doc, change.name, wanted[change.name])
        elif change.action == "update":
            _update_server_table(doc["mcp_servers"][change.name], wanted[change.name])
        elif change.action == "remove":
            del doc["mcp_servers"][change.name]
    if "mcp_servers" in doc and not doc["mcp_servers"]:
        del doc["mcp_servers"]
    atomic_write_text(codex_path, _tidy(tomlkit.dumps(doc)))
    result.written = True
    return result


def _codex_to_claude(codex_path: Path, claude_path: Path, check: bool, prune: bool) -> McpSyncResult:
    if not codex_path.exists():
        raise ConfigError(codex_path, "file not found")
    _, source, warnings = read_codex(codex_path)
    if claude_path.exists():
        document, target, _ = read_claude(claude_path)
    else:
        document, target = {}, {}
    existing = document.get("mcpServers", {})
    result = McpSyncResult(source="codex", source_path=codex_path, target_path=claude_path, warnings=warnings)
    new_servers: dict[str, Any] = {}
    for name, server in source.items():
        entry, w, p = server_to_claude(server)
        result.warnings += w
        result.problems += p
        if name in existing:  # keep keys only Claude understands (e.g. "timeout", "oauth")
            entry |= {k: v for k, v in existing[name].items() if k not in CLAUDE_MAPPED_KEYS and k not in entry}
        new_servers[name] = entry
        if name not in target:
            result.changes.append(ServerChange(name=name, action="add", transport=server.transport.value))
        else:
            new_server, _ = server_from_claude(name, entry, claude_path)
            fields = _changed_fields(target[name], new_server)
            result.changes.append(ServerChange(name=name, action="update" if fields else "keep", fields=fields))
    for name, server in target.items():
        if name in new_servers:
            continue
        if server_to_codex(server)[0] is None:  # Codex could never hold it (SSE, name): keep it
            new_servers[name] = existing[name]
            result.skipped.append(name)
            result.warnings.append(f"{name}: Claude-only server (Codex cannot express it); kept in .mcp.json")
        elif prune:
            result.changes.append(ServerChange(name=name, action="remove"))
        else:
            new_servers[name] = existing[name]
            result.only_in_target.append(name)
    if check or not result.drift or result.problems:
        return result
    ordered = {name: new_servers[name] for name in existing if name in new_servers}  # the user's order first
    ordered |= new_servers
    out = dict(document)
    out["mcpServers"] = ordered
    if "mcpServers" not in document:  # new file: servers first
        out = {"mcpServers": ordered} | {k: v for k, v in document.items() if k != "mcpServers"}
    atomic_write_text(claude_path, dump_json(out))
    result.written = True
    return result
