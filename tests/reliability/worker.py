"""Runs crash-prone inputs one after another in this process and prints one JSON line per input.

The tests start it as a subprocess (``python worker.py GROUP``), so that an input that kills the
process (a segfault, an abort) fails the test instead of pytest, and so that one start-up (torch,
OpenMM: about 3 s) serves many inputs. Before each input its name goes to stderr, so a process
that dies names the input that killed it.

Each line: {"case": name, "raised": exception type or null, "message": str, "exit": code or null}.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import resource
import sys
import traceback
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np
import openmm
import torch

from openmmnnp import NNPForce, pretrained_path, units
from openmmnnp.data import load_frames

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))  # as pytest's pythonpath does
from models.test_se_e2_a_openmm import water_system  # noqa: E402

torch.set_num_threads(1)
FRAMES = TESTS / "data" / "water_frames.npz"
DEEPMD = TESTS / "convert" / "deepmd" / "se_e2_a_two_side.pth"
MODELS = ["water-se_e2_a-compressed", "water-se_e2_a", "water-se3"]


def water(molecules: Optional[int] = None):
    """(System without forces, Topology, positions [N, 3] nm, box edge nm) of the first frame of the test
    data (65 waters), or of its first ``molecules`` waters."""
    frames = load_frames(FRAMES)
    to_a = 1.0 / units.length_factor("angstrom")
    count = frames.positions.shape[1] if molecules is None else 3 * molecules
    system, topology, positions = water_system(torch.from_numpy(frames.positions[0, :count].astype(np.float64) * to_a),
                                               torch.from_numpy(frames.box[0].astype(np.float64) * to_a))
    return system, topology, positions, float(frames.box[0, 0, 0])


def md_context(model: str, platform: str = "CPU") -> openmm.Context:
    system, topology, positions, _ = water()
    system.addForce(NNPForce(pretrained_path(model), topology))
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    return context


def md_step(context: openmm.Context, positions: np.ndarray, edge: Optional[float] = None) -> str:
    """Energy and forces at ``positions`` (in a cubic box ``edge``), then one step: returns the energy, or raises.

    The forces come first: OpenMM's step() refuses NaN positions itself, before any force runs.
    """
    if edge is not None:
        context.setPeriodicBoxVectors(openmm.Vec3(edge, 0, 0), openmm.Vec3(0, edge, 0), openmm.Vec3(0, 0, edge))
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    context.getIntegrator().step(1)
    return str(state.getPotentialEnergy())


def md_cases() -> Dict[str, Callable[[], object]]:
    """The inputs of a blown-up (or badly set up) simulation, for each shipped model on the CPU platform."""
    _, _, start, edge = water()
    inputs = {
        "nan_position": lambda p: p.__setitem__((5, 1), math.nan),
        "inf_position": lambda p: p.__setitem__((5, 0), math.inf),
        "far_outside_box": lambda p: p.__setitem__((5, 0), p[5, 0] + 20000.0 * edge),
        "atoms_piled_on_one_point": lambda p: p.__setitem__(slice(0, 60), p[0]),
        "two_atoms_at_distance_zero": lambda p: p.__setitem__(1, p[0]),
    }
    cases: Dict[str, Callable[[], object]] = {}
    contexts: Dict[str, openmm.Context] = {}

    def case(model: str, change: Optional[Callable[[np.ndarray], None]], box: Optional[float] = None):
        def run() -> object:
            if model not in contexts:
                contexts[model] = md_context(model)
            positions = start.copy()
            if change is not None:
                change(positions)
            return md_step(contexts[model], positions, box if box is not None else edge)
        return run

    for model in MODELS:
        for name, change in inputs.items():
            cases[f"{model}:{name}"] = case(model, change)
        cases[f"{model}:tiny_box"] = case(model, None, box=0.45)  # 195 atoms in 0.09 nm^3: more neighbours than capacity
        cases[f"{model}:good_input_after_errors"] = case(model, None)  # the Context still works afterwards
    return cases


def cli(*argv: str, file_limit: Optional[int] = None) -> Callable[[], object]:
    """openmm-nnp ``argv`` in this process: SystemExit becomes the case's exit code, stderr its message.

    ``file_limit``: bytes any one file may grow to (``ulimit -f``; a full disk) during the command.
    """
    def run() -> object:
        from openmmnnp.cli import main

        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        stderr = io.StringIO()
        try:
            if file_limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, hard))
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                code = main(list(argv))
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
            if isinstance(exit.code, str):
                stderr.write(exit.code)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        raise CommandExit(code, stderr.getvalue())
    return run


class CommandExit(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def cli_cases(work: Path) -> Dict[str, Callable[[], object]]:
    """Bad arguments and bad files for every sub-command: each must stop at once with one line."""
    model = work / "model.pt"
    model.write_bytes(pretrained_path("water-se_e2_a").read_bytes())
    compressed = pretrained_path("water-se_e2_a-compressed")
    frames = work / "frames.npz"
    frames.write_bytes(FRAMES.read_bytes())
    garbage = work / "garbage.npz"
    garbage.write_bytes(os.urandom(2000))
    incomplete = work / "incomplete.npz"
    np.savez(incomplete, positions=np.zeros((1, 3, 3)))
    earlier = work / "earlier_run"
    earlier.mkdir()
    (earlier / "model.pt").write_bytes(b"an earlier model")
    (earlier / "checkpoint.pt").write_bytes(b"an earlier checkpoint")
    fresh = work / "fresh_run"
    fresh.mkdir()
    out = str(work / "out.pt")
    missing = str(work / "missing_folder" / "out.pt")
    imported = str(work / "imported_1e-4.pt")
    train = ["train", str(frames), "--steps", "2", "--threads", "1"]
    return {
        "compress -f 0": cli("compress", "-i", str(model), "-o", out, "-f", "0"),
        "compress -f -5": cli("compress", "-i", str(model), "-o", out, "-f", "-5"),
        "compress -e inf": cli("compress", "-i", str(model), "-o", out, "-e", "inf"),
        "compress -e 0.5": cli("compress", "-i", str(model), "-o", out, "-e", "0.5"),
        "compress -s 0": cli("compress", "-i", str(model), "-o", out, "-s", "0"),
        "compress -o in a missing folder": cli("compress", "-i", str(model), "-o", missing),
        "compress -o a folder": cli("compress", "-i", str(model), "-o", str(work)),
        "compress -i x -o x": cli("compress", "-i", str(model), "-o", str(model)),
        "compress -i a missing file": cli("compress", "-i", str(work / "nope.pt"), "-o", out),
        "compress -i a folder": cli("compress", "-i", str(work), "-o", out),
        "compress -i not a model": cli("compress", "-i", str(garbage), "-o", out),
        "compress -i a compressed model": cli("compress", "-i", str(compressed), "-o", out),
        "convert-deepmd --min-distance 0": cli("convert-deepmd", "-i", str(DEEPMD), "-o", out, "--min-distance", "0"),
        "convert-deepmd --min-distance -1": cli("convert-deepmd", "-i", str(DEEPMD), "-o", out, "--min-distance", "-1"),
        "convert-deepmd --min-distance nan": cli("convert-deepmd", "-i", str(DEEPMD), "-o", out, "--min-distance", "nan"),
        "convert-deepmd --min-distance 100": cli("convert-deepmd", "-i", str(DEEPMD), "-o", out, "--min-distance", "100"),
        "convert-deepmd --min-distance 1e-4": cli("convert-deepmd", "-i", str(DEEPMD), "-o", imported, "--min-distance", "1e-4"),
        "compress the 1e-4 import": cli("compress", "-i", imported, "-o", out),
        "convert-deepmd -i x -o x": cli("convert-deepmd", "-i", str(DEEPMD), "-o", str(DEEPMD)),
        "data water --frames-per-temperature 0": cli("data", "water", "--output", out, "--frames-per-temperature", "0"),
        "data water --box-edge 0.5": cli("data", "water", "--output", out, "--box-edge", "0.5"),
        "data water --temperatures -5": cli("data", "water", "--output", out, "--temperatures", "-5"),
        "data water --platform Nope": cli("data", "water", "--output", out, "--platform", "Nope"),
        "data water --output in a missing folder": cli("data", "water", "--output", missing),
        "train a missing data file": cli("train", str(work / "nope.npz"), "--output-dir", str(fresh)),
        "train a folder as data": cli("train", str(work), "--output-dir", str(fresh)),
        "train a file that is not a frame file": cli("train", str(garbage), "--output-dir", str(fresh)),
        "train a frame file with missing arrays": cli("train", str(incomplete), "--output-dir", str(fresh)),
        "train into an earlier run without --resume": cli(*train, "--output-dir", str(earlier)),
        "train --resume without a checkpoint": cli(*train, "--output-dir", str(fresh), "--resume"),
        "train --steps -1": cli(*train[:2], "--output-dir", str(fresh), "--steps", "-1"),
        "train --validation-fraction 1.5": cli(*train, "--output-dir", str(fresh), "--validation-fraction", "1.5"),
        "train --model unknown": cli(*train, "--output-dir", str(fresh), "--model", "unknown"),
    }


def write_cases(work: Path) -> Dict[str, Callable[[], object]]:
    """Every writer, with an earlier output in place and a file-size limit far below the new file's size
    (``ulimit -f``: what a full disk does part-way through a write). Each case returns the earlier
    files' bytes so that the test can compare them with what is left (and lists the folder)."""
    outputs = work / "outputs"
    outputs.mkdir()
    run = work / "run"
    frames = str(work / "frames.npz")
    Path(frames).write_bytes(FRAMES.read_bytes())
    small = ["--neuron", "4", "8", "--fitting", "16", "16", "--axis-neuron", "2", "--threads", "1",
             "--validation-fraction", "0.25", "--validate-every", "1"]

    def after(command: Callable[[], object], *files: Path) -> Callable[[], object]:
        def run_it() -> object:
            before = {str(f): f.read_bytes() for f in files}
            try:
                command()
            except CommandExit as error:
                changed = [name for name, data in before.items() if Path(name).read_bytes() != data]
                litter = sorted(p.name for p in Path(next(iter(before))).parent.iterdir() if ".tmp" in p.name)
                raise CommandExit(error.code, f"{error}\nchanged: {changed}\nlitter: {litter}") from None
            return "no error"
        return run_it

    def earlier(name: str) -> Path:
        path = outputs / name
        path.write_bytes(b"an earlier file that must survive " * 100)
        return path

    compressed, imported, water = earlier("compressed.pt"), earlier("imported.pt"), earlier("water.npz")
    limit = 16 * 1024  # bytes: every new file is larger
    return {
        "train, to resume from": cli("train", frames, "--output-dir", str(run), "--steps", "2", *small),
        "compress": after(cli("compress", "-i", str(pretrained_path("water-se_e2_a")), "-o", str(compressed),
                              file_limit=limit), compressed),
        "convert-deepmd": after(cli("convert-deepmd", "-i", str(DEEPMD), "-o", str(imported), file_limit=limit), imported),
        "train --resume": after(cli("train", frames, "--output-dir", str(run), "--steps", "4", "--resume", *small,
                                    file_limit=limit), run / "checkpoint.pt", run / "model.pt", run / "learning_curve.csv"),
        "data water": after(cli("data", "water", "--output", str(water), "--temperatures", "300", "--frames-per-temperature",
                                "4", "--interval", "2", "--equilibration", "0", file_limit=4096), water),
    }


def frozen_cases() -> Dict[str, Callable[[], object]]:
    """torch.jit.freeze of each shipped model's NNPForce module (what openmm-torch does), then a call that raises."""
    _, topology, positions, edge = water()
    cases: Dict[str, Callable[[], object]] = {}

    def case(model: str) -> Callable[[], object]:
        def run() -> object:
            module = NNPForce(pretrained_path(model), topology).getModule()
            frozen = torch.jit.freeze(module.eval())
            bad = torch.tensor(positions)
            bad[5, 0] = math.inf
            return frozen(bad, torch.eye(3, dtype=torch.float64) * edge)
        return run

    for model in MODELS:
        cases[model] = case(model)
    return cases


def context_memory(contexts: int, own_copy: bool) -> Callable[[], object]:
    """RSS growth (MB) over ``contexts`` Contexts made one after another (each used once and deleted)
    from one System with the shipped compressed model, or each from its own copy of the System."""
    def run() -> object:
        import copy
        import ctypes

        def rss_mb() -> float:
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so that RSS counts live memory
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024.0

        system, topology, positions, _ = water(molecules=2)  # the cost is per Context, not per atom
        system.addForce(NNPForce(pretrained_path("water-se_e2_a-compressed"), topology))
        sizes = []
        for _ in range(contexts):
            own = copy.deepcopy(system) if own_copy else system
            context = openmm.Context(own, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("CPU"))
            context.setPositions(positions)
            context.getState(getEnergy=True, getForces=True)
            del context, own
            sizes.append(rss_mb())
        return json.dumps({"first": sizes[0], "last": sizes[-1], "sizes": sizes})
    return run


def in_folder(cases: Callable[[Path], Dict[str, Callable[[], object]]], work: Path) -> Dict[str, Callable[[], object]]:
    work.mkdir()
    return cases(work)


# One process per group (a start-up costs about 3 s). "leak" has its own: it measures the process's memory.
GROUPS: Dict[str, Callable[[Path], Dict[str, Callable[[], object]]]] = {
    "md": lambda work: {**md_cases(), **{f"frozen:{name}": run for name, run in frozen_cases().items()}},
    "files": lambda work: {**in_folder(cli_cases, work / "cli"), **in_folder(write_cases, work / "writes")},
    "leak": lambda work: {"one System": context_memory(30, False), "a copy per Context": context_memory(3, True)},
}


def main(group: str, work: Path, selected: list[str]) -> None:
    cases = GROUPS[group](work)
    for name, run in cases.items():
        if selected and name not in selected:
            continue
        print(f"[worker] {name}", file=sys.stderr, flush=True)
        result = {"case": name, "raised": None, "message": "", "exit": None}
        try:
            result["message"] = str(run())
        except CommandExit as error:
            result.update(exit=error.code, message=str(error))
        except Exception as error:  # noqa: BLE001 - reported to the test, which judges it
            result.update(raised=type(error).__name__, message=str(error) or traceback.format_exc())
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3:])
