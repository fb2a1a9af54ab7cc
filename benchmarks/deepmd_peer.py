"""DeePMD-kit's DeepPot against openmm-nnp on the same se_e2_a water model (issue #9), CPU.

Run by hand (needs a DeePMD-kit 3.2.0 venv, see tests/convert/deepmd/make_fixtures.py):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/deepmd_peer.py --edges 3.1 5.0 --threads 1 2

First run: trains a se_e2_a water model with DeePMD-kit (the standard water example's sizes,
a few hundred steps on tests/data/water_frames.npz: speed, not accuracy, is measured),
freezes and ``dp --pt compress``es it, imports it with ``convert_deepmd`` and compresses the
import with ``openmmnnp.compression.compress`` (all float64, step 0.01, extrapolate 5, as dp).
Files go to --work (default $TMPDIR/openmmnnp_deepmd_peer; model files are not committed).

Four cases per openmmtools WaterBox edge and thread count, each in a fresh subprocess: DeePMD
uncompressed and compressed ``DeepPot.eval`` (DeePMD venv's python; that worker imports only
deepmd and numpy), ours uncompressed and compressed (energy + forces by autograd). Time: median
of --repeat after one warm-up; memory: peak RSS during the evaluations minus RSS before them.
A worker that would take more memory than the machine has left (MemAvailable - 2 GB at its
start) stops itself and is reported as "> N MB", instead of waking the OOM killer.

``--device cuda`` (a GPU machine with both venvs): both sides run on the GPU (DeePMD-kit picks it
by itself; ours is moved there) and memory is the growth of torch's peak CUDA allocation during
the evaluations. With the default ``--device cpu`` DeePMD-kit is kept off any GPU (DEVICE=cpu).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import available_memory_mb, median_time, reset_peak_rss, rss_mb, run_worker, water_box  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEEPMD_PYTHON = os.environ.get("DEEPMD_PYTHON", "/work/deepmd-venv/bin/python")
WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "openmmnnp_deepmd_peer"
# DeePMD-kit's examples/water/se_e2_a sizes.
DESCRIPTOR = {"type": "se_e2_a", "rcut": 6.0, "rcut_smth": 0.5, "sel": [46, 92], "neuron": [25, 50, 100],
              "axis_neuron": 16, "resnet_dt": False, "seed": 1}
FITTING = {"neuron": [240, 240, 240], "resnet_dt": True, "seed": 1}
STEPS = 300
# (case name, worker kind, model file in --work)
CASES = [("DeePMD", "deepmd", "deepmd.pth"), ("DeePMD-c", "deepmd", "deepmd-compressed.pth"),
         ("ours", "ours", "ours.pt"), ("ours-c", "ours", "ours-compressed.pt")]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- workers


def watch_memory(limit_mb: float) -> None:
    """Ends this worker (with a JSON status line) once its RSS passes ``limit_mb``."""
    def watch() -> None:
        while True:
            rss = rss_mb("VmRSS")
            if rss > limit_mb:
                print(json.dumps({"status": "memory", "message": f"RSS {rss:.0f} MB passed the limit {limit_mb:.0f} MB"}), flush=True)
                os._exit(0)
            time.sleep(0.02)
    threading.Thread(target=watch, daemon=True).start()


def deepmd_evaluator(model: str, coords: np.ndarray, box: np.ndarray, types: np.ndarray) -> Callable[[], tuple]:
    from deepmd.infer import DeepPot  # DeePMD venv only; reads DP_*_PARALLELISM_THREADS

    pot = DeepPot(model)

    def evaluate() -> tuple:
        energy, forces, _ = pot.eval(coords.reshape(1, -1), box.reshape(1, 9), types)
        return float(np.asarray(energy).ravel()[0]), np.asarray(forces).reshape(-1, 3)
    return evaluate


def ours_evaluator(model: str, coords: np.ndarray, box: np.ndarray, types: np.ndarray, threads: int, device: str) -> Callable[[], tuple]:
    import torch

    from openmmnnp.force import inference_copy  # (importing openmmnnp loads the op library)

    torch.set_num_threads(threads)
    net = inference_copy(torch.jit.load(model, map_location=device))  # as NNPForce runs it: no parameter gradients
    x = torch.from_numpy(coords).to(device)
    b = torch.from_numpy(box).to(device)
    t = torch.from_numpy(types.astype(np.int64)).to(device)

    def evaluate() -> tuple:  # the host copy of the forces waits for the device
        y = x.clone().requires_grad_(True)
        energy = net(y, b, t)
        (grad,) = torch.autograd.grad(energy, y)
        return float(energy.detach()), -grad.cpu().numpy()
    return evaluate


def cuda_peak_mb() -> Callable[[], float]:
    """Resets torch's peak CUDA allocation; the returned function gives its growth since, MB."""
    import torch

    torch.cuda.synchronize()
    start = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    return lambda: (torch.cuda.max_memory_allocated() - start) / 2**20


def worker(kind: str, model: str, box_file: str, threads: int, repeat: int, limit_mb: float, save: Optional[str],
           device: str = "cpu") -> dict:
    data = np.load(box_file)
    coords, box, types = data["coords"], data["box"], data["types"]
    if kind == "deepmd":
        evaluate = deepmd_evaluator(model, coords, box, types)  # its device: DEVICE in deepmd_env
    else:
        evaluate = ours_evaluator(model, coords, box, types, threads, device)
    before = rss_mb("VmRSS")
    watch_memory(limit_mb)
    reset_peak_rss()
    cuda_peak = cuda_peak_mb() if device == "cuda" else None
    seconds = median_time(evaluate, repeat)
    peak = cuda_peak() if cuda_peak else rss_mb("VmHWM") - before
    if save:
        energy, forces = evaluate()
        np.savez(save, energy=energy, forces=forces)
    return {"status": "ok", "atoms": int(len(types)), "seconds": seconds, "peak_mb": peak}


# ----------------------------------------------------------------------------- preparation (our venv)


def deepmd_env(threads: int, device: str = "cpu") -> dict:
    t = str(threads)
    env = {"OMP_NUM_THREADS": t, "DP_INTRA_OP_PARALLELISM_THREADS": t, "DP_INTER_OP_PARALLELISM_THREADS": t}
    if device == "cpu":
        env["DEVICE"] = "cpu"  # deepmd/pt/utils/env.py: otherwise it takes a GPU whenever one is visible
    return env


def make_models(work: Path) -> None:
    """Trains, freezes and compresses the DeePMD model; imports and compresses it with openmm-nnp."""
    dp = str(Path(DEEPMD_PYTHON).parent / "dp")
    if not (work / "deepmd.pth").exists():
        # make_fixtures.py's writer of tests/data/water_frames.npz as a DeePMD system (numpy only).
        spec = importlib.util.spec_from_file_location("make_fixtures", REPO / "tests" / "convert" / "deepmd" / "make_fixtures.py")
        fixtures = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fixtures)
        train = work / "train"
        if not (train / "system").exists():
            fixtures.write_system(str(train / "system"))
        model = {"type_map": ["O", "H"], "descriptor": DESCRIPTOR, "fitting_net": FITTING, "data_stat_nbatch": 4}
        inputs = {"model": model,
                  "learning_rate": {"type": "exp", "start_lr": 1e-3, "stop_lr": 1e-4, "decay_steps": 100},
                  "loss": {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1.0, "start_pref_f": 1000.0, "limit_pref_f": 1.0},
                  "training": {"training_data": {"systems": ["system"], "batch_size": 1}, "numb_steps": STEPS,
                               "seed": 1, "disp_freq": 100, "save_freq": STEPS, "save_ckpt": "model.ckpt"}}
        (train / "input.json").write_text(json.dumps(inputs, indent=1))
        env = {**os.environ, **deepmd_env(2)}
        log(f"training the DeePMD-kit water model ({STEPS} steps) in {train}")
        for command in ([dp, "--pt", "train", "input.json"], [dp, "--pt", "freeze", "-o", str(work / "deepmd.pth")]):
            subprocess.run(command, cwd=train, check=True, env=env, stdout=subprocess.DEVNULL)
    if not (work / "deepmd-compressed.pth").exists():
        log("dp --pt compress")
        subprocess.run([dp, "--pt", "compress", "-i", "deepmd.pth", "-o", "deepmd-compressed.pth"], cwd=work, check=True,
                       env={**os.environ, **deepmd_env(2)}, stdout=subprocess.DEVNULL)
    if not (work / "ours-compressed.pt").exists():
        import torch

        from openmmnnp.compression import compress
        from openmmnnp.convert.deepmd import convert_deepmd

        log("convert_deepmd + compress")
        model = convert_deepmd(str(work / "deepmd.pth"))
        torch.jit.script(model).save(str(work / "ours.pt"))
        torch.jit.script(compress(model)).save(str(work / "ours-compressed.pt"))


def box_file(work: Path, edge: float) -> Path:
    """The WaterBox of ``edge`` nm (benchmarks/common.py) in DeePMD's units: coords, box in angstrom, types O=0, H=1."""
    path = work / f"box_{edge:g}nm.npz"
    if not path.exists():
        data = np.load(water_box(edge))
        types = np.array([0 if e == "O" else 1 for e in data["elements"]], dtype=np.int32)
        np.savez(path, coords=data["positions"].astype(np.float64) * 10.0, box=data["box"].astype(np.float64) * 10.0, types=types)
    return path


def run_case(work: Path, kind: str, model: str, box: Path, threads: int, repeat: int, save: Optional[Path],
             device: str = "cpu") -> dict:
    limit = available_memory_mb() - 2048.0
    args = [__file__, "--worker", kind, str(work / model), str(box), "--threads", str(threads), "--repeat", str(repeat),
            "--limit-mb", f"{limit:.0f}", "--device", device] + (["--save", str(save)] if save else [])
    env = deepmd_env(threads, device) if kind == "deepmd" else {"OMP_NUM_THREADS": str(threads)}
    result = run_worker(args, timeout=3600, env=env, python=DEEPMD_PYTHON if kind == "deepmd" else None)
    result.setdefault("limit_mb", limit)
    return result


def cell(result: dict, key: str, scale: float, fmt: str) -> str:
    if result.get("status") == "ok":
        return format(scale * result[key], fmt)
    if result.get("status") == "memory":
        return f">{result['limit_mb'] / 1e3:.0f}GB" if key == "peak_mb" else "mem"
    return str(result.get("status"))


def agreement(a: Path, b: Path) -> str:
    x, y = np.load(a), np.load(b)
    de = abs(float(x["energy"]) - float(y["energy"])) / abs(float(y["energy"]))
    df = np.abs(x["forces"] - y["forces"]).max() / np.abs(y["forces"]).max()
    return f"|dE|/|E| = {de:.1e}, max|dF|/max|F| = {df:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", type=float, nargs="+", default=[3.1, 5.0], help="WaterBox edges, nm (default 3.1 5.0)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timed evaluations per case after one warm-up (default 3)")
    parser.add_argument("--work", type=Path, default=WORK, help="models and boxes (default $TMPDIR/openmmnnp_deepmd_peer)")
    parser.add_argument("--cases", nargs="+", default=[c[0] for c in CASES], choices=[c[0] for c in CASES])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where both sides run (default cpu)")
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "MODEL", "BOX"), help=argparse.SUPPRESS)
    parser.add_argument("--limit-mb", type=float, default=float("inf"), help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, model, box = args.worker
        print(json.dumps(worker(kind, model, box, args.threads[0], args.repeat, args.limit_mb, args.save, args.device)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    make_models(args.work)
    cases = [c for c in CASES if c[0] in args.cases]
    rows = []
    agree = {}
    for edge in args.edges:
        box = box_file(args.work, edge)
        over_memory: dict = {}  # a case past the memory limit is not retried with more threads
        for threads in args.threads:
            results = {}
            for name, kind, model in cases:
                if name in over_memory:
                    results[name] = over_memory[name]
                    continue
                save = args.work / f"out_{name}.npz" if edge == args.edges[0] and threads == args.threads[0] else None
                log(f"edge {edge:g} nm, {threads} thread(s): {name} ({model}) ...")
                results[name] = run_case(args.work, kind, model, box, threads, args.repeat, save, args.device)
                log(f"  -> {results[name]}")
                if results[name].get("status") == "memory":
                    over_memory[name] = results[name]
            rows.append((edge, threads, results))
        if edge == args.edges[0]:
            for ours, theirs in (("ours", "DeePMD"), ("ours-c", "DeePMD-c")):
                a, b = args.work / f"out_{ours}.npz", args.work / f"out_{theirs}.npz"
                if ours in args.cases and theirs in args.cases and a.exists() and b.exists():
                    agree[f"{ours} vs {theirs}"] = agreement(a, b)

    names = [c[0] for c in cases]
    print(f"DeePMD-kit DeepPot vs openmm-nnp, se_e2_a water (sel [46, 92], neuron [25, 50, 100], fitting [240, 240, 240]), "
          f"float64, {args.device.upper()}, energy + forces, median of {args.repeat}; "
          + ("peak CUDA allocation growth" if args.device == "cuda" else "peak RSS delta"))
    print(f"{'atoms':>6} {'thr':>3} " + " ".join(f"{n + ' s':>10}" for n in names) + f" {'t ratio':>8} "
          + " ".join(f"{n + ' MB':>11}" for n in names) + f" {'mem ratio':>9}")
    for edge, threads, results in rows:
        atoms = next((r["atoms"] for r in results.values() if r.get("status") == "ok"), 0)
        dc, oc = results.get("DeePMD-c", {}), results.get("ours-c", {})
        both = dc.get("status") == "ok" and oc.get("status") == "ok"
        t_ratio = f"{dc['seconds'] / oc['seconds']:8.1f}" if both else f"{'-':>8}"
        m_ratio = f"{dc['peak_mb'] / max(oc['peak_mb'], 1.0):9.1f}" if both else f"{'-':>9}"
        print(f"{atoms:6d} {threads:3d} " + " ".join(f"{cell(results[n], 'seconds', 1.0, '.3f'):>10}" for n in names)
              + f" {t_ratio} " + " ".join(f"{cell(results[n], 'peak_mb', 1.0, '.0f'):>11}" for n in names) + f" {m_ratio}")
    print("t ratio = DeePMD-c s / ours-c s; mem ratio = DeePMD-c MB / ours-c MB")
    for label, text in agree.items():
        print(f"agreement at {args.edges[0]:g} nm, {label}: {text}")


if __name__ == "__main__":
    main()
