"""Atomic file writes: a command that fails part-way never leaves a truncated file behind.

Every file openmm-nnp writes (models, checkpoints, frame files, tables, plots) goes through
:func:`atomic_path`: the writer fills a temporary file in the target's own folder (same file
system, so the final ``os.replace`` is atomic), the data are fsync'ed, and only then is the
temporary file renamed over the target. If the writer raises (a full disk, a bad argument,
Ctrl-C), the temporary file is removed and the previous file at ``path`` is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Union

PathLike = Union[str, os.PathLike]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yields a temporary path next to ``path``; on success it is fsync'ed and renamed to ``path``.

    The temporary name keeps ``path``'s suffix, so writers that pick a format by extension
    (``numpy.savez``, ``matplotlib.savefig``) behave as they would for ``path`` itself.

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist.
        IsADirectoryError: ``path`` is an existing folder.
        OSError: the write failed (a full disk, a file-size limit): the message names ``path``;
            the previous file is unchanged.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {str(target)!r}: the folder {str(folder)!r} does not exist")
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {str(target)!r}: it is a folder")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=folder)
    os.close(descriptor)
    temporary_path = Path(temporary)
    try:
        try:
            yield temporary_path
        except OSError as error:  # say which file could not be written (a bare write error names none)
            if error.filename is not None:
                raise
            raise OSError(error.errno, f"cannot write {str(target)!r}: {error.strerror or error}") from error
        with open(temporary_path, "rb+") as written:  # the data must be on disk before the rename
            os.fsync(written.fileno())
        if target.exists():  # keep the permissions of the file being replaced
            os.chmod(temporary_path, target.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary_path, 0o666 & ~umask)
        os.replace(temporary_path, target)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise
    _fsync_folder(folder)


def write_text(path: PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_bytes(path: PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def save_torch(path: PathLike, value: Any) -> None:
    """Saves a TorchScript module (``torch.jit.save``) or any other object (``torch.save``) to ``path`` atomically.

    The bytes are made in memory and written by Python: torch's own file writer finishes the file
    in a destructor, so a write that fails there (a full disk) aborts the whole process (exit 134)
    instead of raising. Here it raises OSError, and the previous file is unchanged.
    """
    import io

    import torch

    buffer = io.BytesIO()
    if isinstance(value, torch.jit.ScriptModule):
        torch.jit.save(value, buffer)
    else:
        torch.save(value, buffer)
    write_bytes(path, buffer.getvalue())


def _fsync_folder(folder: Path) -> None:
    """Makes the rename itself durable (best effort: some file systems refuse a folder fsync)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
