"""Export skills so Claude Code and Codex can use them directly.

    claude  DIR/.claude/skills/<name>/
    codex   DIR/.agents/skills/<name>/
    plugin  one plugin, `aios-skills`, listed in a marketplace for each tool:
              DIR/.claude-plugin/marketplace.json
              DIR/.agents/plugins/marketplace.json
              DIR/plugins/aios-skills/.claude-plugin/plugin.json
              DIR/plugins/aios-skills/.codex-plugin/plugin.json
              DIR/plugins/aios-skills/skills/<name>/

Each skill folder is copied whole (SKILL.md, output.schema.json, inputs.json, other files) except
files that look like secrets (`.env`, keys, credentials) and caches. SKILL.md is copied byte for
byte when its front matter already keeps to the Agent Skills rules (every `metadata` value a
string); otherwise the front matter is rewritten with string values and the body kept verbatim.
Every exported skill is loaded back with `aios.skills.loader.load_skill` and must equal the original.

The user's files are never replaced silently. Each exported skill folder gets `.aios-export.json`
(the content hash of every file aios wrote), and so does the plugin folder for its plugin.json
files. A re-export replaces only what aios wrote and nobody changed since; a folder or file the
user wrote or changed is refused (one line each, nothing written) unless `force=True`, which moves
it to `DIR/.aios-backups/<UTC time>/...` first and lists it in `ExportResult.backups`.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import tempfile
from enum import StrEnum
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from aios.errors import ConfigError
from aios.files import atomic_write_text
from aios.portability.mcp import dump_json
from aios.portability.ownership import FORCE_HINT, Backups, RefusedError, digest, file_digests
from aios.portability.secrets import looks_like_secret
from aios.skills.loader import SKILL_FILE, Skill, load_skill, load_skills, split_front_matter

PLUGIN_NAME = "aios-skills"
MARKETPLACE_NAME = "aios"
PLUGIN_SOURCE = f"./plugins/{PLUGIN_NAME}"
PLUGIN_CATEGORY = "Productivity"

EXPORT_MARKER = ".aios-export.json"  # what aios wrote into a folder: {"files": {path: "sha256:..."}}
# Never exported: caches and an earlier export's marker (files that may hold a secret neither).
IGNORED_PATTERNS = ("__pycache__", "*.pyc", ".DS_Store", ".git", ".hypothesis", ".pytest_cache", EXPORT_MARKER)


class ExportTarget(StrEnum):
    claude = "claude"
    codex = "codex"
    plugin = "plugin"


class ExportResult(BaseModel):
    target: ExportTarget
    dest: Path
    skills: list[str] = Field(default_factory=list)
    skill_dirs: list[Path] = Field(default_factory=list)
    manifests: list[Path] = Field(default_factory=list)
    backups: list[tuple[Path, Path]] = Field(default_factory=list)  # (the user's path, where it was moved)
    warnings: list[str] = Field(default_factory=list)


def skill_fingerprint(skill: Skill) -> dict[str, Any]:
    """Everything a run uses from a skill, minus its location: equal fingerprints, same skill."""
    return {
        "name": skill.name,
        "description": skill.description,
        "metadata": skill.metadata.model_dump(mode="json"),
        "front_matter": skill.front_matter.model_dump(mode="json", by_alias=True),
        "instructions": skill.instructions,
        "output_schema": skill.output_schema,
        "default_inputs": skill.default_inputs,
    }


def is_secret_file(name: str) -> bool:
    return looks_like_secret(name)


def _is_ignored(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED_PATTERNS)


def _package_version() -> str:
    try:
        return importlib_metadata.version("aios")
    except importlib_metadata.PackageNotFoundError:
        return "0.1.0"


def portable_skill_md(skill: Skill) -> tuple[str, bool]:
    """SKILL.md text that keeps to the Agent Skills rules; (text, rewritten?)."""
    text = skill.path.read_text(encoding="utf-8")
    data, _ = split_front_matter(text, skill.path)
    meta = data.get("metadata")
    if meta is None or (isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())):
        return text, False
    front = skill.front_matter.model_dump(by_alias=True, exclude_none=True)
    if not front.get("metadata"):
        front.pop("metadata", None)
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096)
    rest = text.split("\n---", 1)[1]  # the closing fence's remainder and the body, verbatim
    return f"---\n{head}---{rest}", True


def _read_marker(folder: Path) -> dict[str, str | None] | None:
    """The files aios recorded writing into `folder`, or None (no marker, or not one aios can read)."""
    try:
        data = json.loads((folder / EXPORT_MARKER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else None


def _write_marker(folder: Path, files: dict[str, str | None]) -> None:
    data = {"written_by": "aios export", "version": _package_version(), "files": files}
    (folder / EXPORT_MARKER).write_text(dump_json(data), encoding="utf-8")


def foreign_folder(folder: Path) -> str | None:
    """Why `folder` is the user's (not written by aios, or changed since), or None if it may be replaced."""
    if not folder.exists() and not folder.is_symlink():
        return None
    if folder.is_symlink() or not folder.is_dir():
        return "not written by aios"
    present = file_digests(folder, skip=(EXPORT_MARKER,))
    recorded = _read_marker(folder)
    if recorded is None:
        return "not written by aios" if present else None
    changed = [path for path, sha in present.items() if sha is None or recorded.get(path) != sha]
    return f"changed since aios exported it ({', '.join(changed)})" if changed else None


def _foreign_file(path: Path, recorded: str | None, fresh: str) -> str | None:
    """Why the file at `path` is the user's, or None if it may be replaced by `fresh`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if data == fresh.encode("utf-8"):
        return None
    if recorded is None:
        return "not written by aios"
    return None if digest(data) == recorded else "changed since aios exported it"


def _copy_skill(skill: Skill, dest: Path, warnings: list[str], backups: Backups | None = None) -> None:
    """Copy one skill folder to dest, verified to load back identically.

    An existing dest is replaced; with `backups` it is moved there first (the caller decided it is the user's).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{skill.name}.", dir=dest.parent))
    try:
        staging = work / skill.name
        _copy_tree(skill.folder, staging, skill.name, warnings)
        text, rewritten = portable_skill_md(skill)
        if rewritten:
            warnings.append(f"{skill.name}: front matter rewritten so every metadata value is a string")
        (staging / SKILL_FILE).write_text(text, encoding="utf-8")
        if skill.metadata.contract.startswith("python:"):
            warnings.append(
                f"{skill.name}: its contract is a Python model ({skill.metadata.contract}); "
                "the exported skill needs aios importable to load it"
            )
        exported = load_skill(staging)
        if skill_fingerprint(exported) != skill_fingerprint(skill):
            raise ConfigError(staging / SKILL_FILE, "exported skill does not load back identically (not exported)")
        _write_marker(staging, file_digests(staging))
        if backups is not None:
            backups.move(dest)
        elif dest.exists() or dest.is_symlink():
            dest.rename(work / ".old")
        staging.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _copy_tree(src: Path, dst: Path, prefix: str, warnings: list[str]) -> None:
    dst.mkdir(parents=True)
    for entry in sorted(src.iterdir()):
        if _is_ignored(entry.name):
            continue
        relative = f"{prefix}/{entry.name}"
        if entry.is_symlink():
            warnings.append(f"{relative}: symbolic link not exported")
        elif is_secret_file(entry.name):
            warnings.append(f"{relative}: looks like a secret; not exported")
        elif entry.is_dir():
            _copy_tree(entry, dst / entry.name, relative, warnings)
        elif entry.is_file():
            shutil.copy2(entry, dst / entry.name)


def _read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "must be a JSON object")
    if "plugins" in data and not isinstance(data["plugins"], list):
        raise ConfigError(path, "must be a list", "plugins")
    return data


def _merge_marketplace(existing: dict[str, Any] | None, fresh: dict[str, Any]) -> dict[str, Any]:
    """Keep other plugins and keys of an existing marketplace; replace or add our entry."""
    if existing is None:
        return fresh
    out = dict(existing)
    for key, value in fresh.items():
        if key != "plugins":
            out.setdefault(key, value)
    ours = fresh["plugins"][0]
    plugins = [p for p in existing.get("plugins", []) if not (isinstance(p, dict) and p.get("name") == PLUGIN_NAME)]
    index = next(
        (i for i, p in enumerate(existing.get("plugins", [])) if isinstance(p, dict) and p.get("name") == PLUGIN_NAME),
        len(plugins),
    )
    plugins.insert(index, ours)
    out["plugins"] = plugins
    return out


def plugin_manifests(skills: list[Skill], owner: str, version: str) -> dict[str, dict[str, Any]]:
    """The four JSON files of the plugin export, by path relative to DIR (before merging)."""
    names = ", ".join(s.name for s in skills) or "none yet"
    description = f"Business skills from aios, runnable on Claude or OpenAI: {names}."
    if len(description) > 500:
        description = description[:497] + "..."
    claude_plugin = {"name": PLUGIN_NAME, "version": version, "description": description, "author": {"name": owner}}
    codex_plugin = {
        "name": PLUGIN_NAME,
        "version": version,
        "description": description,
        "author": {"name": owner},
        "skills": "./skills/",
        "interface": {
            "displayName": "aios skills",
            "shortDescription": "Business skills from aios",
            "developerName": owner,
            "category": PLUGIN_CATEGORY,
        },
    }
    claude_market = {
        "name": MARKETPLACE_NAME,
        "owner": {"name": owner},
        "plugins": [{"name": PLUGIN_NAME, "source": PLUGIN_SOURCE, "description": description, "version": version}],
    }
    codex_market = {
        "name": MARKETPLACE_NAME,
        "interface": {"displayName": "aios"},
        "plugins": [
            {
                "name": PLUGIN_NAME,
                "source": {"source": "local", "path": PLUGIN_SOURCE},
                "policy": {"installation": "AVAILABLE", "authentication": "ON_INSTALL"},
                "category": PLUGIN_CATEGORY,
            }
        ],
    }
    return {
        ".claude-plugin/marketplace.json": claude_market,
        ".agents/plugins/marketplace.json": codex_market,
        f"plugins/{PLUGIN_NAME}/.claude-plugin/plugin.json": claude_plugin,
        f"plugins/{PLUGIN_NAME}/.codex-plugin/plugin.json": codex_plugin,
    }


def export_skills(
    root: Path | str,
    target: ExportTarget | str,
    dest: Path | str,
    *,
    owner: str = "aios",
    version: str | None = None,
    force: bool = False,
) -> ExportResult:
    """Export every skill under `root/skills` for `target` into `dest`.

    Raises RefusedError (nothing written) when a folder or file to replace is the user's, unless
    `force`, which backs each one up first.
    """
    root, dest, target = Path(root), Path(dest), ExportTarget(target)
    skills = load_skills(root / "skills")  # a broken skill raises its one-line error before anything is written
    result = ExportResult(target=target, dest=dest, skills=[s.name for s in skills])
    if not skills:
        result.warnings.append(f"no skills found under {root / 'skills'}")
    if target is ExportTarget.claude:
        skills_dir = dest / ".claude" / "skills"
    elif target is ExportTarget.codex:
        skills_dir = dest / ".agents" / "skills"
    else:
        skills_dir = dest / "plugins" / PLUGIN_NAME / "skills"
        manifests = plugin_manifests(skills, owner, version or _package_version())
        merged: dict[Path, dict[str, Any]] = {}
        for relative, fresh in manifests.items():  # read (and validate) everything before writing
            path = dest / relative
            merged[path] = _merge_marketplace(_read_json_object(path), fresh) if "marketplace" in relative else fresh
    foreign: dict[Path, str] = {}
    for skill in skills:
        if why := foreign_folder(skills_dir / skill.name):
            foreign[skills_dir / skill.name] = why
    if target is ExportTarget.plugin:
        plugin_dir = dest / "plugins" / PLUGIN_NAME
        recorded = _read_marker(plugin_dir) or {}
        texts = {path: dump_json(data) for path, data in merged.items()}
        for path, text in texts.items():
            if path.is_relative_to(plugin_dir):
                if why := _foreign_file(path, recorded.get(path.relative_to(plugin_dir).as_posix()), text):
                    foreign[path] = why
    if foreign and not force:
        raise RefusedError([f"{path}: {why}; {FORCE_HINT}" for path, why in foreign.items()])
    backups = Backups(dest)
    for skill in skills:
        target_dir = skills_dir / skill.name
        _copy_skill(skill, target_dir, result.warnings, backups if target_dir in foreign else None)
        result.skill_dirs.append(target_dir)
    if target is ExportTarget.plugin:
        current = {s.name for s in skills}
        for stale in sorted(skills_dir.glob(f"*/{SKILL_FILE}")):
            folder = stale.parent
            if folder.name in current:
                continue
            if why := foreign_folder(folder):
                result.warnings.append(f"{folder.name}: {why}; kept in the plugin (delete it by hand if unwanted)")
            else:
                shutil.rmtree(folder)
                result.warnings.append(f"{folder.name}: no longer a skill; removed from the plugin")
        written: dict[str, str | None] = {}
        for path, text in texts.items():
            if path in foreign:
                backups.move(path)
            atomic_write_text(path, text)
            result.manifests.append(path)
            if path.is_relative_to(plugin_dir):
                written[path.relative_to(plugin_dir).as_posix()] = digest(text.encode("utf-8"))
        _write_marker(plugin_dir, written)
    result.backups = backups.moved
    return result
