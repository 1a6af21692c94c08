"""Which files aios wrote, and what to do with the ones it did not: refuse, or back them up.

aios replaces a file or folder only when it wrote it and nothing changed since; it knows this from
content hashes it recorded when writing (`sha256:<hex>`). Anything else is the user's: refused
unless `--force`, which first moves it to `BASE/.aios-backups/<UTC time>/<same relative path>`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from aios.errors import AiosError

BACKUP_DIR = ".aios-backups"
FORCE_HINT = "--force backs it up and replaces it"


class RefusedError(AiosError):
    """aios would have to replace the user's files: one line per file or folder, nothing written."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("; ".join(lines))


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digests(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Every file (and link) under `folder` by relative POSIX path -> digest (None for a link)."""
    out: dict[str, str | None] = {}
    for here, dirs, files in os.walk(folder, followlinks=False):
        base = Path(here)
        for name in [*files, *(d for d in dirs if (base / d).is_symlink())]:
            path = base / name
            relative = path.relative_to(folder).as_posix()
            if relative in skip:
                continue
            out[relative] = None if path.is_symlink() else digest(path.read_bytes())
    return dict(sorted(out.items()))


class Backups:
    """Moves the user's files aside under one dated folder per run, and remembers where to."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.moved: list[tuple[Path, Path]] = []
        self._folder: Path | None = None

    def _stamp_folder(self) -> Path:
        if self._folder is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            folder, n = self.base / BACKUP_DIR / stamp, 1
            while folder.exists():
                n += 1
                folder = self.base / BACKUP_DIR / f"{stamp}-{n}"
            self._folder = folder
        return self._folder

    def move(self, path: Path) -> Path:
        """Move `path` (a file, folder or link under `base`) into the backup folder; return its new path."""
        try:
            relative = path.relative_to(self.base)
        except ValueError:
            relative = Path(path.name)
        target = self._stamp_folder() / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        self.moved.append((path, target))
        return target
