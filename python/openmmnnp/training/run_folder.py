"""The output folder of a training run: refuse to overwrite an earlier run, and add rows to its
learning curve without ever leaving a half-written file."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import List

from openmmnnp.atomic_write import write_text


def append_csv_row(csv_path: Path, row: List[object]) -> None:
    """Adds one row to the CSV file by rewriting it whole (atomically): never a half-written file."""
    with open(csv_path, newline="") as f:
        text = f.read()
    line = io.StringIO()
    csv.writer(line).writerow(row)
    write_text(csv_path, text + line.getvalue())


def check_output_dir(out: Path, resume: bool) -> None:
    """Refuses to overwrite an earlier run, and to resume one that does not exist (before any work).

    Raises:
        FileExistsError: without ``resume``, ``out`` already holds model.pt or checkpoint.pt.
        FileNotFoundError: with ``resume``, ``out`` holds no checkpoint.pt.
        NotADirectoryError: ``out`` is a file.
    """
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"the output folder {str(out)!r} is a file")
    earlier = [name for name in ("model.pt", "checkpoint.pt") if (out / name).exists()]
    if resume and not (out / "checkpoint.pt").is_file():
        raise FileNotFoundError(f"cannot resume: {str(out / 'checkpoint.pt')!r} does not exist (train without --resume to start)")
    if not resume and earlier:
        raise FileExistsError(f"{str(out)!r} already holds an earlier run ({', '.join(earlier)}): continue it with --resume, "
                              "or choose another --output-dir")

