"""openmmnnp.atomic_write: a failed write leaves the previous file as it was, and no litter."""

import contextlib
import os
import resource

import pytest
import torch

from openmmnnp.atomic_write import atomic_path, save_torch, write_bytes, write_text


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


@contextlib.contextmanager
def file_size_limit(size: int):
    """``ulimit -f``: writes beyond ``size`` bytes fail (EFBIG; Python ignores SIGXFSZ), like a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("value", ["module", "checkpoint"])
def test_save_torch_that_fails_part_way_raises_and_keeps_the_previous_file(tmp_path, value):
    """torch.jit.save to a path aborts the whole process (exit 134) when its last write fails;
    save_torch serialises in memory, so the failed write raises OSError naming the file."""
    target = tmp_path / "model.pt"
    target.write_bytes(b"previous model")
    big = torch.nn.Linear(64, 64)
    obj = torch.jit.script(big) if value == "module" else {"model": big.state_dict(), "step": 3}
    with file_size_limit(4096), pytest.raises(OSError, match=r"cannot write '.*model.pt': File too large"):
        save_torch(target, obj)
    assert target.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    save_torch(target, obj)  # without the limit it is written whole
    loaded = torch.jit.load(str(target)) if value == "module" else torch.load(target)
    assert (loaded.weight if value == "module" else loaded["model"]["weight"]).shape == (64, 64)


def test_write_bytes_replaces_the_file_whole(tmp_path):
    target = tmp_path / "frames.npz"
    write_bytes(target, b"x" * 10)
    write_bytes(target, b"y" * 5)
    assert target.read_bytes() == b"yyyyy"
