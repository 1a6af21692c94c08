"""Users' files: read as UTF-8 text with one clear line when they are not, and written without ever
leaving a half-written one (the single home of ``atomic_write_text``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from aios.errors import ConfigError


def read_user_text(path: Path) -> str:
    """A file the user wrote, as text; a missing or non-UTF-8 file is a one-line ConfigError naming it."""
    text = read_user_text_or_none(path)
    if text is None:
        raise ConfigError(path, "file not found")
    return text


def read_user_text_or_none(path: Path) -> str | None:
    """Like `read_user_text`, but None where there is no file (an optional file, or one aios creates)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text") from None


def atomic_write_text(path: Path | str, text: str, *, new_file_mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` so readers see the old file or the new one, never a mix.

    The text goes to a temporary file in the same folder, is fsynced and then
    ``os.replace``d over ``path``; the folder is fsynced too, so the new name
    survives a power cut. An existing file keeps its mode (a file created here
    gets ``new_file_mode``), and a symlink stays a symlink: its target is written.
    """
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = new_file_mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
