"""openmmnnp.atomic_write: a failed write leaves the previous file as it was, and no litter."""

import os

import pytest

from openmmnnp.atomic_write import atomic_path, write_text


def test_success_replaces_and_keeps_mode(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_text(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_failure_keeps_previous_file(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as temporary:
            temporary.write_text("half a mod")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_temporary_keeps_suffix(tmp_path):
    with atomic_path(tmp_path / "frames.npz") as temporary:
        assert temporary.suffix == ".npz" and temporary.parent == tmp_path
        temporary.write_bytes(b"x")


def test_missing_folder_and_folder_target(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_text(tmp_path / "missing" / "a.txt", "x")
    (tmp_path / "dir").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_text(tmp_path / "dir", "x")
