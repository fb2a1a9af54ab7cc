"""Cost of the overflow checks (openmmnnp.checks) in MD with the shipped compressed water model.

Every call records the table statistics of the fused op (always on: it is part of the model);
the question is what recording and checking cost. Three Contexts on the same water box,
LangevinMiddle 300 K 0.5 fs:

    recorded  the shipped model as is: every call records into overflow_flags, never checked
    every100  recorded + the in-model check every 100 calls (NNPForce(check_frequency=100))
    reporter  recorded + NNPCheckReporter(100) in a Simulation

They run in interleaved blocks of --block steps (so load changes on a shared machine hit all three
alike); the table gives the median time per step and its ratio to "recorded". On a busy machine
the MD ratios are only good to several percent, so the script also times the pieces directly, side
by side: the model call, one recording (record_table_stats) and one check (check_flags).

    python benchmarks/check_overhead.py --edge 2.0 --block 100 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import water_box, water_topology  # noqa: E402

VARIANTS = ["recorded", "every100", "reporter"]


def build(variant: str, edge: float):
    """A Simulation of the water box with the compressed model in the given variant."""
    import openmm
    import openmm.app as app
    import openmm.unit as unit
    import torch

    from openmmnnp import NNPCheckReporter, NNPForce, pretrained_path
    from openmmnnp.data.water import FRICTION_PER_PS, TIMESTEP_FS
    from openmmnnp.systems import nnp_system

    model = torch.jit.load(str(pretrained_path("water-se_e2_a-compressed")))
    data = np.load(water_box(edge))
    bare, topology = water_topology(np.asarray([str(e) for e in data["elements"]]), data["box"])
    if variant == "every100":
        system = bare
        system.addForce(NNPForce(model, topology, check_frequency=100))
    else:
        system = nnp_system(bare, topology, model)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, FRICTION_PER_PS / unit.picosecond, TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(1)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    simulation.context.setPositions(data["positions"])
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    if variant == "reporter":
        simulation.reporters.append(NNPCheckReporter(100))
    return simulation, len(data["positions"])


def direct_costs(edge: float, repeat: int = 20) -> tuple[float, float, float]:
    """(model energy+forces, one recording, one check) in seconds, timed side by side on the water
    box with the shipped compressed model (median of ``repeat``)."""
    import torch

    from common import median_time
    from openmmnnp import checks, pretrained_path

    model = torch.jit.load(str(pretrained_path("water-se_e2_a-compressed")))
    data = np.load(water_box(edge))
    positions = torch.tensor(data["positions"] * 10.0, dtype=torch.float32)  # angstrom
    box = torch.tensor(data["box"] * 10.0, dtype=torch.float32)
    types = torch.tensor([model.type_map.index(str(e)) for e in data["elements"]])
    pairs, shifts, num_pairs = model.neighbors(positions, box)
    _, stats = model.contracted_environment_and_stats(positions, box, types, pairs, shifts, num_pairs)
    flags = model.overflow_flags.clone()
    davg, dstd = model.davg[:, 0], model.dstd[:, 0]
    record = torch.jit.script(checks.record_table_stats)
    check = torch.jit.script(checks.check_flags)

    def model_call() -> None:
        x = positions.clone().requires_grad_(True)
        model(x, box, types).backward()

    t_model = median_time(model_call, repeat, warmup=3)
    t_record = median_time(lambda: record(flags, stats, types, davg, dstd), repeat, warmup=3)
    t_check = median_time(lambda: check(flags, list(model.type_map), model.length_unit), repeat, warmup=3)
    return t_model, t_record, t_check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edge", type=float, default=2.5, help="WaterBox edge, nm")
    parser.add_argument("--block", type=int, default=200, help="steps per timed block (a multiple of 100)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved blocks per variant")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    simulations = {}
    for variant in VARIANTS:
        simulations[variant], atoms = build(variant, args.edge)
        simulations[variant].step(10)  # warm-up: TorchScript's profiling executor
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            start = time.perf_counter()
            simulations[variant].step(args.block)
            simulations[variant].context.getState(getPositions=True)
            times[variant].append((time.perf_counter() - start) / args.block)
    t_model, t_record, t_check = direct_costs(args.edge)
    base = statistics.median(times["recorded"])
    print(f"water box {args.edge:g} nm ({atoms} atoms), CPU platform, 1 thread, {args.rounds} interleaved blocks of {args.block} steps")
    print("| variant | ms per step (median) | ratio to recorded |\n|---|---|---|")
    for variant in VARIANTS:
        t = statistics.median(times[variant])
        print(f"| {variant} | {1e3 * t:.2f} | {t / base:.3f} |")
    print(f"\nDirect, side by side (median of 20): model energy+forces {1e3 * t_model:.1f} ms, recording {1e3 * t_record:.3f} ms "
          f"per call, one check {1e3 * t_check:.3f} ms")
    print(f"cost of checking every 100 steps = (recording + check / 100) / model call = {100 * (t_record + t_check / 100) / t_model:.2f}%")


if __name__ == "__main__":
    main()
