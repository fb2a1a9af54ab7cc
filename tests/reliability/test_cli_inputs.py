"""Bad command-line input stops each sub-command at once (before any MD, compression or training)
with one line that says what is wrong: exit status 2 for a bad argument (argparse), 1 for a bad file
or an impossible request; never a traceback, never an overwritten input or earlier run."""

import re

import pytest

GROUP = "files"
# case -> (exit status, what the last line must say)
EXPECTED = {
    "compress -f 0": (2, r"-f/--frequency: must be a positive integer or -1"),
    "compress -f -5": (2, r"-f/--frequency: must be a positive integer or -1"),
    "compress -e inf": (2, r"-e/--extrapolate: must be a finite number >= 1, got inf"),
    "compress -e 0.5": (2, r"-e/--extrapolate: must be a finite number >= 1"),
    "compress -s 0": (2, r"-s/--step: must be a positive finite number"),
    "compress -o in a missing folder": (2, r"-o/--output: cannot write .* the folder .*missing_folder' does not exist"),
    "compress -o a folder": (2, r"-o/--output: .* is a folder"),
    "compress -i x -o x": (1, r"is the input model; write the compressed model to another file"),
    "compress -i a missing file": (2, r"-i/--input: .*nope.pt' does not exist"),
    "compress -i a folder": (2, r"-i/--input: .* is a folder, not a file"),
    "compress -i not a model": (1, r"cannot read .*garbage.npz' as a TorchScript model"),
    "compress -i a compressed model": (1, r"the model is already compressed"),
    "convert-deepmd --min-distance 0": (2, r"--min-distance: must be a positive finite number, got 0"),
    "convert-deepmd --min-distance -1": (2, r"--min-distance: must be a positive finite number, got -1"),
    "convert-deepmd --min-distance nan": (2, r"--min-distance: must be a positive finite number, got nan"),
    "convert-deepmd --min-distance 100": (1, r"minimum neighbour distance 100 A must be below the model's cutoff rcut = 4 A"),
    "convert-deepmd --min-distance 1e-4": (0, r"^$"),
    "compress the 1e-4 import": (1, r"the tables would have \d+ intervals each \(at most 100000\)"),
    "convert-deepmd -i x -o x": (1, r"is the input model; write to another file"),
    "data water --frames-per-temperature 0": (2, r"--frames-per-temperature: must be a positive integer, got 0"),
    "data water --box-edge 0.5": (1, r"--box-edge 0.5 nm is too small .* at least 1.25 nm"),
    "data water --temperatures -5": (2, r"--temperatures: must be a positive finite number, got -5"),
    "data water --platform Nope": (2, r"--platform: no OpenMM platform 'Nope' here; available: .*CPU"),
    "data water --output in a missing folder": (2, r"--output: cannot write .* does not exist"),
    "train a missing data file": (2, r"argument data: .*nope.npz' does not exist"),
    "train a folder as data": (2, r"argument data: .* is a folder, not a file"),
    "train a file that is not a frame file": (1, r"garbage.npz' is not an openmm-nnp frame file \(not a .npz archive\)"),
    "train a frame file with missing arrays": (1, r"incomplete.npz' is not an openmm-nnp frame file \(missing \['box'"),
    "train into an earlier run without --resume": (1, r"earlier_run' already holds an earlier run \(model.pt, checkpoint.pt\): "
                                                      r"continue it with --resume, or choose another --output-dir"),
    "train --resume without a checkpoint": (1, r"cannot resume: .*fresh_run/checkpoint.pt' does not exist"),
    "train --steps -1": (2, r"--steps: must be an integer >= 0, got -1"),
    "train --validation-fraction 1.5": (2, r"--validation-fraction: must lie strictly between 0 and 1, got 1.5"),
    "train --model unknown": (2, r"--model: invalid choice: 'unknown'"),
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_bad_cli_input_stops_at_once_with_one_line(worker_results, case):
    result = worker_results[case]
    status, pattern = EXPECTED[case]
    assert result["raised"] is None, result  # an exception that escaped: a traceback
    assert result["exit"] == status, result
    last = result["message"].strip().splitlines()[-1] if result["message"].strip() else ""
    assert re.search(pattern, last), last
    assert "Traceback" not in result["message"]
