"""Trains two tiny DeePMD-kit se_e2_a models and records DeePMD-kit's own energies and forces.

Runs in a separate environment with DeePMD-kit (it pins its own torch), never in CI:

    python3.11 -m venv /work/deepmd-venv
    /work/deepmd-venv/bin/pip install "deepmd-kit[torch]==3.2.0" torch==2.11.0 mpich
    /work/deepmd-venv/bin/python tests/convert/deepmd/make_fixtures.py

For each model NAME in MODELS it writes, next to this file: NAME.pth (frozen), NAME.pt
(training checkpoint), NAME.dp (``dp convert-backend``) and NAME_reference.npz with DeePMD's
energies [C] (eV) and forces [C, N, 3] (eV/angstrom) on the configurations of
``configurations()`` (three periodic water frames and one non-periodic cluster; angstrom).
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FRAMES = os.path.join(REPO, "tests", "data", "water_frames.npz")
DP = os.path.join(os.path.dirname(sys.executable), "dp")

# Small nets and a short cutoff keep the files small; non-trivial weights, non-zero davg.
DESCRIPTOR = {"type": "se_e2_a", "rcut": 4.0, "rcut_smth": 1.0, "sel": [20, 40], "neuron": [4, 8, 16],
              "axis_neuron": 4, "seed": 1}
MODELS = {
    "se_e2_a_two_side": {"descriptor": dict(DESCRIPTOR, type_one_side=False, resnet_dt=True),
                         "fitting_net": {"neuron": [16, 16], "resnet_dt": True, "seed": 1}},
    "se_e2_a_one_side": {"descriptor": dict(DESCRIPTOR, type_one_side=True, resnet_dt=False),
                         "fitting_net": {"neuron": [16, 16], "resnet_dt": False, "seed": 1}},
}
STEPS = 300


def units():
    """openmmnnp/units.py, loaded by path: this environment cannot import openmmnnp (other torch)."""
    spec = importlib.util.spec_from_file_location("units", os.path.join(REPO, "python", "openmmnnp", "units.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_system(directory: str) -> None:
    """tests/data/water_frames.npz (nm, kJ/mol) as a DeePMD system (angstrom, eV)."""
    u = units()
    nm = 1.0 / u.length_factor("angstrom")
    kj = 1.0 / u.energy_factor("eV")
    frames = np.load(FRAMES)
    count = frames["positions"].shape[0]
    os.makedirs(os.path.join(directory, "set.000"))
    np.savetxt(os.path.join(directory, "type.raw"), frames["types"], fmt="%d")
    with open(os.path.join(directory, "type_map.raw"), "w") as handle:
        handle.write("\n".join(str(t) for t in frames["type_map"]) + "\n")
    arrays = {"coord": frames["positions"].astype(np.float64) * nm, "box": frames["box"].astype(np.float64) * nm,
              "energy": frames["energy"] * kj, "force": frames["forces"].astype(np.float64) * kj / nm}
    for name, array in arrays.items():
        np.save(os.path.join(directory, "set.000", name + ".npy"), array.reshape(count, -1))


def configurations():
    """(coords [C, N, 3] angstrom, boxes [C, 3, 3] or None per configuration, types [N])."""
    u = units()
    nm = 1.0 / u.length_factor("angstrom")
    frames = np.load(FRAMES)
    positions = frames["positions"].astype(np.float64) * nm
    boxes = frames["box"].astype(np.float64) * nm
    periodic = [(positions[k], boxes[k]) for k in range(3)]
    # A non-periodic cluster: the first 10 waters of the last frame (many empty neighbour slots).
    cluster = (positions[3][:30], None)
    return periodic + [cluster], frames["types"]


def reference(model_file: str):
    """DeePMD-kit's energies [C] and forces list of [N, 3] on configurations()."""
    from deepmd.infer import DeepPot

    pot = DeepPot(model_file)
    confs, types = configurations()
    energies, forces, periodic = [], [], []
    for coords, box in confs:
        atom_types = types[: coords.shape[0]]
        e, f, _ = pot.eval(coords.reshape(1, -1), None if box is None else box.reshape(1, 9), atom_types)
        energies.append(float(np.asarray(e).ravel()[0]))
        forces.append(np.asarray(f).reshape(-1, 3))
        periodic.append(box is not None)
    return energies, forces, periodic


def make(name: str, config: dict, work: str) -> None:
    system = os.path.join(work, "system")
    if not os.path.isdir(system):
        write_system(system)
    run_dir = os.path.join(work, name)
    os.makedirs(run_dir)
    frames = np.load(FRAMES)
    model = {"type_map": [str(t) for t in frames["type_map"]], "data_stat_nbatch": 4, **config}
    inputs = {"model": model,
              "learning_rate": {"type": "exp", "start_lr": 1e-3, "stop_lr": 1e-4, "decay_steps": 100},
              "loss": {"type": "ener", "start_pref_e": 1.0, "limit_pref_e": 1.0, "start_pref_f": 10.0, "limit_pref_f": 10.0},
              "training": {"training_data": {"systems": [system], "batch_size": 1}, "numb_steps": STEPS,
                           "seed": 1, "disp_freq": 100, "save_freq": STEPS, "save_ckpt": "model.ckpt"}}
    with open(os.path.join(run_dir, "input.json"), "w") as handle:
        json.dump(inputs, handle, indent=1)
    env = dict(os.environ, OMP_NUM_THREADS="1", DP_INTRA_OP_PARALLELISM_THREADS="1", DP_INTER_OP_PARALLELISM_THREADS="1")
    subprocess.run([DP, "--pt", "train", "input.json"], cwd=run_dir, check=True, env=env)
    subprocess.run([DP, "--pt", "freeze", "-o", "frozen.pth"], cwd=run_dir, check=True, env=env)
    subprocess.run([DP, "convert-backend", "frozen.pth", "frozen.dp"], cwd=run_dir, check=True, env=env)
    checkpoint = os.path.join(run_dir, f"model.ckpt-{STEPS}.pt")
    shutil.copy(os.path.join(run_dir, "frozen.pth"), os.path.join(HERE, name + ".pth"))
    shutil.copy(checkpoint, os.path.join(HERE, name + ".pt"))
    shutil.copy(os.path.join(run_dir, "frozen.dp"), os.path.join(HERE, name + ".dp"))
    energies, forces, periodic = reference(os.path.join(run_dir, "frozen.pth"))
    confs, types = configurations()
    np.savez(os.path.join(HERE, name + "_reference.npz"), energy=np.array(energies), periodic=np.array(periodic),
             types=types, **{f"coords_{k}": c for k, (c, _) in enumerate(confs)},
             **{f"box_{k}": b for k, (_, b) in enumerate(confs) if b is not None},
             **{f"forces_{k}": f for k, f in enumerate(forces)})


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        for name, config in MODELS.items():
            make(name, config, work)


if __name__ == "__main__":
    main()
