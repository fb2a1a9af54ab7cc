"""A write that fails part-way (a full disk, simulated with a file-size limit as ``ulimit -f`` sets
it) ends the command with one line (exit 1; torch's own file writer used to abort the process, exit
134) and changes no earlier file: each writer writes a temporary file next to the target and renames
it only once it is complete (openmmnnp.atomic_write)."""

import pytest

GROUP = "files"


def test_the_run_to_resume_from_was_written(worker_results):
    assert worker_results["train, to resume from"]["exit"] == 0, worker_results["train, to resume from"]


@pytest.mark.parametrize("writer", ["compress", "convert-deepmd", "train --resume", "data water"])
def test_failed_write_ends_with_one_line_and_leaves_earlier_files_unchanged(worker_results, writer):
    result = worker_results[writer]
    assert result["raised"] is None and result["exit"] == 1, result
    assert "File too large" in result["message"] and "Traceback" not in result["message"]
    assert "changed: []" in result["message"] and "litter: []" in result["message"], result["message"][-300:]
