"""aios.files.atomic_write_text: the old file or the new one, never a mix; mode and symlinks kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from aios.files import atomic_write_text


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("the user's text\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "half written \ud800 then unencodable")
    assert path.read_text() == "the user's text\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_existing_mode_is_kept_and_a_new_file_gets_the_given_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared.txt"
    shared.write_text("x")
    shared.chmod(0o664)
    atomic_write_text(shared, "y")
    assert shared.read_text() == "y" and shared.stat().st_mode & 0o777 == 0o664
    private = tmp_path / "sub" / "private.txt"
    atomic_write_text(private, "z", new_file_mode=0o600)
    assert private.read_text() == "z" and private.stat().st_mode & 0o777 == 0o600


def test_a_symlink_stays_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
