"""Portability between Claude Code and Codex: the same project works in either tool.

- `mcp`: MCP server configs, Claude Code `.mcp.json` <-> Codex `.codex/config.toml`.
- `agents`: instructions, `AGENTS.md` <-> `CLAUDE.md` (portable form: CLAUDE.md imports @AGENTS.md).
- `export`: skills to `.claude/skills`, `.agents/skills` or a plugin marketplace for both tools.
- `memory`: the pure merge half of memory extraction (facts appended to `memory/learned.md`).
- `cli`: the Typer commands (`aios sync mcp|agents`, `aios export`, `aios memory`).
"""

from __future__ import annotations

from aios.portability.agents import AgentsSyncResult, sync_agents
from aios.portability.export import ExportResult, ExportTarget, export_skills
from aios.portability.mcp import McpServer, McpSyncResult, Transport, sync_mcp
from aios.portability.memory import FACTS_SCHEMA, Fact, merge_facts, recent_facts

__all__ = [
    "FACTS_SCHEMA",
    "AgentsSyncResult",
    "ExportResult",
    "ExportTarget",
    "Fact",
    "McpServer",
    "McpSyncResult",
    "Transport",
    "export_skills",
    "merge_facts",
    "recent_facts",
    "sync_agents",
    "sync_mcp",
]
