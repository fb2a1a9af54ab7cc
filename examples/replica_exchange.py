"""Temperature replica exchange (parallel tempering) of an NNP water box, on one process or over MPI.

openmmtools' ParallelTemperingSampler runs one replica per temperature; every iteration each
replica runs --steps-per-iteration Langevin steps, then replicas swap temperatures by the
Metropolis rule. Everything goes into --storage (openmmtools' netCDF format; docs/scale-out.md).

    python examples/replica_exchange.py --iterations 20                      # one process
    mpiexec -n 2 python examples/replica_exchange.py --iterations 20         # replicas spread over 2 ranks
    mpiexec -n 2 python examples/replica_exchange.py --iterations 40 --resume  # continue to 40 in total

Under MPI each rank runs its share of the replicas (replica r on rank r mod K). With several GPUs
each rank takes one, chosen from its rank on the node; without CUDA every rank uses the CPU
platform with the node's cores shared out. Each rank says what it uses.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Optional

# openmmtools and pymbar log at import and at every sampler: "the multistate API is experimental",
# "JAX not found" (an optional speed-up of MBAR). Quiet unless --verbose.
logging.getLogger("openmmtools").setLevel(logging.ERROR)
logging.getLogger("pymbar").setLevel(logging.ERROR)

import numpy as np  # noqa: E402
import openmm  # noqa: E402
import openmm.app as app  # noqa: E402
import openmm.unit as unit  # noqa: E402
from openmmtools import cache, states  # noqa: E402
from openmmtools.multistate import MultiStateReporter  # noqa: E402
from tqdm import tqdm  # noqa: E402

import openmmnnp  # noqa: E402
from openmmnnp.data.water import FRICTION_PER_PS, TIMESTEP_FS  # noqa: E402
from openmmnnp.force import load_model  # noqa: E402
from openmmnnp.replica import (NNPParallelTemperingSampler, Placement, ReplicaError,  # noqa: E402
                               StrictLangevinDynamicsMove, choose_platform, default_threads, mpi_placement)
from openmmnnp.replica.mixing import plot_mixing  # noqa: E402
from openmmnnp.replica.sampler import error_line  # noqa: E402
from openmmnnp.replica.storage import create_storage  # noqa: E402

DEFAULT_MODEL = "water-se_e2_a-compressed"


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="docs/scale-out.md: several GPUs, clusters, what is stored, resuming.")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"TorchScript model file or shipped model name (default {DEFAULT_MODEL})")
    parser.add_argument("--box-edge", type=float, default=1.3, help="cubic water box edge in nm (default 1.3: 65 waters)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 315.0, 330.0, 345.0],
                        help="one replica per temperature, K (default 300 315 330 345)")
    parser.add_argument("--iterations", type=int, default=50,
                        help="total number of iterations in the storage, also with --resume (default 50)")
    parser.add_argument("--steps-per-iteration", type=int, default=100,
                        help=f"Langevin steps of {TIMESTEP_FS} fs between exchanges (default 100)")
    parser.add_argument("--storage", default="replica_exchange.nc",
                        help="openmmtools netCDF storage; a second file STORAGE_checkpoint.nc holds positions")
    parser.add_argument("--resume", action="store_true",
                        help="continue --storage up to --iterations (the system and temperatures come from the storage)")
    parser.add_argument("--checkpoint-interval", type=int, default=1,
                        help="store positions every N iterations; a resume restarts from the last of these (default 1)")
    parser.add_argument("--check-every", type=int, default=100,
                        help="the NNP checks its table range and neighbour capacity every N evaluations (0: off; docs/checks.md)")
    parser.add_argument("--platform", choices=["CUDA", "CPU", "Reference"], default=None,
                        help="OpenMM platform (default CUDA if a GPU is visible, else CPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per rank for torch and OpenMM (default: the node's cores / ranks on the node)")
    parser.add_argument("--mixing-plot", default=None, help="write a PNG of the replica at each temperature against the iteration")
    parser.add_argument("--verbose", action="store_true", help="show openmmtools' log (timings per iteration)")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.steps_per_iteration < 1 or args.checkpoint_interval < 1:
        parser.error("--iterations, --steps-per-iteration and --checkpoint-interval must be at least 1")
    if args.box_edge <= 0:
        parser.error(f"--box-edge must be positive, got {args.box_edge}")
    if any(t <= 0 for t in args.temperatures) or len(set(args.temperatures)) != len(args.temperatures):
        parser.error(f"--temperatures must be positive and distinct, got {args.temperatures}")
    if args.check_every < 0:
        parser.error("--check-every must be 0 (off) or positive")
    return args


def model_path(name: str) -> Path:
    """A model file, or the path of a shipped model (an unknown name lists the shipped ones)."""
    path = Path(name)
    return path if path.is_file() else openmmnnp.pretrained_path(name)


def water_box(box_edge_nm: float) -> tuple[app.Topology, np.ndarray]:
    """(topology, positions [N, 3] nm) of an openmmtools water box; its classical forces are not used."""
    from openmmtools.testsystems import WaterBox

    # The cutoff only has to fit the box: the NNP replaces every classical force.
    box = WaterBox(box_edge=box_edge_nm * unit.nanometer, cutoff=min(0.6, 0.45 * box_edge_nm) * unit.nanometer,
                   constrained=False)
    if box.topology.getNumAtoms() == 0:
        raise ValueError(f"a {box_edge_nm} nm box holds no water molecule")
    return box.topology, np.asarray(box.positions.value_in_unit(unit.nanometer))


def nnp_water_system(model: Path, topology: app.Topology, check_every: int) -> openmm.System:
    """An NNP-only System (masses, box) for ``topology``; the model checks itself every ``check_every`` calls."""
    scripted = load_model(model)
    has_checks = hasattr(scripted, "check_frequency")
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.addForce(openmm.CMMotionRemover())
    frequency = (check_every if check_every > 0 else -1) if has_checks else None
    system.addForce(openmmnnp.NNPForce(scripted, topology, system=system, periodic=True, check_frequency=frequency))
    return system


def create(args: argparse.Namespace, placement: Placement) -> None:
    """Creates the storage: every replica starts from the same water box."""
    path = model_path(args.model)
    topology, positions = water_box(args.box_edge)
    system = nnp_water_system(path, topology, args.check_every)
    if placement.rank == 0:
        print(f"{topology.getNumResidues()} waters ({system.getNumParticles()} atoms) in a {args.box_edge} nm box, "
              f"model {path}, temperatures {args.temperatures} K", flush=True)
    move = StrictLangevinDynamicsMove(timestep=TIMESTEP_FS * unit.femtosecond, collision_rate=FRICTION_PER_PS / unit.picosecond,
                                      n_steps=args.steps_per_iteration, reassign_velocities=True)
    sampler = NNPParallelTemperingSampler(mcmc_moves=move, number_of_iterations=args.iterations,
                                          online_analysis_interval=None)
    reference = states.ThermodynamicState(system, temperature=args.temperatures[0] * unit.kelvin)
    start = states.SamplerState(positions * unit.nanometer, box_vectors=system.getDefaultPeriodicBoxVectors())
    temperatures = [t * unit.kelvin for t in args.temperatures]
    create_storage(args.storage, args.checkpoint_interval,
                   lambda reporter: sampler.create(reference, start, reporter, temperatures=temperatures,
                                                   n_temperatures=len(temperatures)))


def open_sampler(args: argparse.Namespace, placement: Placement, reporter: MultiStateReporter) -> NNPParallelTemperingSampler:
    """The sampler at the last checkpoint of the storage, to run on to --iterations."""
    sampler = NNPParallelTemperingSampler.from_storage(reporter)
    if args.iterations < sampler.iteration:
        raise ValueError(f"{args.storage} already holds {sampler.iteration} iterations, more than --iterations "
                         f"{args.iterations}")
    if args.resume and placement.rank == 0:
        print(f"resuming {args.storage} at iteration {sampler.iteration} (system and temperatures from the storage)",
              flush=True)
    sampler.number_of_iterations = args.iterations  # a stored option: written to the storage
    return sampler


def run(args: argparse.Namespace, placement: Placement) -> int:
    threads = args.threads or default_threads(placement)
    choice = choose_platform(placement, threads, args.platform)
    print(choice.description, flush=True)
    if args.resume and not Path(args.storage).is_file():
        raise FileNotFoundError(f"--resume: the storage {args.storage} does not exist")
    if not args.resume and Path(args.storage).exists():
        raise FileExistsError(f"the storage {args.storage} exists: pass --resume to continue it, or another --storage")
    if not args.resume:
        create(args, placement)
    reporter = MultiStateReporter(args.storage)  # its checkpoint interval is read from the file
    try:
        sampler = open_sampler(args, placement, reporter)
        # One Context per rank, on this rank's platform and GPU (openmmtools' default cache picks the
        # fastest platform and device 0). All temperatures share it, moves and energies too
        # (capacity 1 evicts the one the very first energies create), so each rank holds one copy
        # of the model and its buffers, and warms TorchScript up once.
        contexts = cache.ContextCache(platform=choice.platform, platform_properties=choice.properties,
                                      capacity=1, time_to_live=None)
        sampler.energy_context_cache = contexts
        sampler.sampler_context_cache = contexts
        first, started, warm, done = iterate(sampler, args.iterations, placement)
    finally:
        reporter.close()  # on rank 0 it holds the files open; the last complete iteration stays readable
    if placement.rank == 0:
        timed = args.iterations - first - 1
        rate = f", then {timed / (done - warm):.3f} iterations/s" if timed > 0 else ""
        print(f"{args.iterations - first} iterations on {placement.size} rank(s) in {done - started:.2f} s"
              f"{rate}; storage {args.storage} holds {args.iterations} iterations", flush=True)
        if args.mixing_plot:
            plot_mixing(args.storage, args.mixing_plot)
            print(f"wrote {args.mixing_plot}", flush=True)
    return 0


def iterate(sampler: NNPParallelTemperingSampler, iterations: int, placement: Placement) -> tuple[int, float, float, float]:
    """Runs the sampler to ``iterations`` with a progress bar on rank 0.

    Returns (first iteration, start time, time after the first iteration run here, end time).
    """
    first = sampler.iteration
    started = time.perf_counter()
    warm = started  # the first iteration run here also creates the Contexts and warms TorchScript up
    with tqdm(total=iterations, initial=first, unit="iteration", disable=placement.rank != 0) as bar:
        while sampler.iteration < iterations:
            sampler.run(1)
            bar.update(1)
            if sampler.iteration == first + 1:
                warm = time.perf_counter()
    return first, started, warm, time.perf_counter()


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if args.verbose:
        logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
        logging.getLogger("openmmtools").setLevel(logging.INFO)
    placement = mpi_placement()
    try:
        return run(args, placement)
    except (ReplicaError, ValueError, FileNotFoundError, FileExistsError, openmm.OpenMMException) as error:
        # mpiplus hands a replica's error to every rank; each says it, on one line.
        print(f"replica_exchange.py: error on rank {placement.rank}: {error_line(error)}", file=sys.stderr, flush=True)
        if placement.size > 1:  # an error on one rank only must not leave the others waiting
            from mpi4py import MPI

            MPI.COMM_WORLD.Abort(1)
        return 1


if __name__ == "__main__":
    sys.exit(main())
