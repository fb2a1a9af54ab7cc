"""Energy + force training of an se_e2_a or SE(3)-attention model on frame files (DeePMD's loss and schedules).

Loss per step (``batch_frames`` frames, default one):  pe * mean((dE / N)^2) + pf * mean(|dF|^2 over 3N components),
with pe, pf moving from their start to their limit values as the learning rate decays.
Everything inside is in model units (angstrom, eV); frame files are converted through
:mod:`openmmnnp.units`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from openmmnnp import units
from openmmnnp.atomic_write import atomic_path, save_torch, write_text
from openmmnnp.data.frames import Frames, concatenate, load_frames
from openmmnnp.models.se3_attention import SE3Attention
from openmmnnp.models.se_e2_a import SeE2A
from openmmnnp.training.run_folder import append_csv_row, check_output_dir
from openmmnnp.training.schedule import learning_rate, prefactor
from openmmnnp.training.statistics import frame_neighbors, set_distance_statistics, set_energy_bias, set_statistics


@dataclasses.dataclass
class TrainConfig:
    data: List[str]
    output_dir: str
    steps: int = 6000
    start_lr: float = 2e-3
    stop_lr: float = 2e-5
    start_pref_e: float = 0.02
    limit_pref_e: float = 1.0
    start_pref_f: float = 1000.0
    limit_pref_f: float = 1.0
    validation_fraction: float = 0.1
    validate_every: int = 250
    validation_frames: int = 16
    seed: int = 1
    threads: int = 2
    time_limit_minutes: float = 0.0  # 0: no limit; else stop (and save) after this wall time
    rcut: float = 6.0
    rcut_smth: float = 0.5
    sel: List[int] = dataclasses.field(default_factory=lambda: [46, 92])
    neuron: List[int] = dataclasses.field(default_factory=lambda: [8, 16, 32])
    axis_neuron: int = 4
    fitting: List[int] = dataclasses.field(default_factory=lambda: [64, 64, 64])
    type_one_side: bool = False
    model: str = "se_e2_a"  # "se_e2_a" or "se3" (SE3Attention: uses rcut and the se3_* fields)
    se3_lmax: int = 2
    se3_channels: int = 16
    se3_layers: int = 2
    se3_heads: int = 2
    se3_max_neighbors: int = 80
    batch_frames: int = 1  # frames per step, evaluated as one graph
    prior_inner: float = 0.75  # the short-range prior is fully on below this x the shortest pair of the data
    prior_outer: float = 1.0  # and off from this x it on (> 1: it reaches into the data; models.pair_repulsion)
    init_model: str = ""  # model.pt of the same architecture to start from (warm start); "": from scratch


def model_from_config(config: TrainConfig, type_map: List[str]) -> torch.nn.Module:
    if config.model == "se_e2_a":
        return SeE2A(type_map, config.rcut, config.rcut_smth, config.sel, config.neuron, config.axis_neuron,
                     config.fitting, config.type_one_side)
    if config.model == "se3":
        return SE3Attention(type_map, config.rcut, config.se3_lmax, config.se3_channels, config.se3_layers,
                            config.se3_heads, max_neighbors=config.se3_max_neighbors)
    raise ValueError(f"TrainConfig.model must be 'se_e2_a' or 'se3', got {config.model!r}")


class FrameSet:
    """Frames in model units with their full pair lists computed once (positions never move)."""

    def __init__(self, frames: Frames, model: torch.nn.Module) -> None:
        to_length = 1.0 / units.length_factor(model.length_unit)
        to_energy = 1.0 / units.energy_factor(model.energy_unit)
        self.positions = torch.from_numpy(frames.positions.astype(np.float32) * to_length)
        self.box = torch.from_numpy(frames.box.astype(np.float32) * to_length)
        self.energy = torch.from_numpy(frames.energy * to_energy)  # float64
        self.forces = torch.from_numpy(frames.forces.astype(np.float32) * (to_energy / to_length))
        self.types = torch.from_numpy(frames.types.astype(np.int64))
        self.periodic = [bool(np.any(b)) for b in frames.box]  # a zero box: no periodic boundaries
        self.pairs, self.shifts = frame_neighbors(model, list(self.positions), [self.box_of(k) for k in range(len(frames))],
                                                  check_capacity=True)

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def box_of(self, k: int) -> Optional[torch.Tensor]:
        """Box [3, 3] of frame k in model units, None without periodic boundaries."""
        return self.box[k] if self.periodic[k] else None


def energy_and_forces(model: torch.nn.Module, data: FrameSet, frames: List[int], create_graph: bool):
    """(energies [B] eV, forces [B, N, 3] eV/angstrom) of the frames, evaluated as one graph.

    The B frames' atoms are concatenated and their pair lists offset, with each edge's periodic
    shift folded into a Cartesian vector (shift @ box) so that one call serves frames of different
    boxes: the model sees box = identity and shifts in angstrom.
    """
    num_atoms = data.types.shape[0]
    positions = torch.cat([data.positions[k] for k in frames]).clone().requires_grad_(True)
    pairs = torch.cat([data.pairs[k].to(torch.long) + i * num_atoms for i, k in enumerate(frames)], dim=1)
    shifts = torch.cat([data.shifts[k].to(positions.dtype) @ data.box[k] if data.periodic[k]
                        else torch.zeros(data.shifts[k].shape[0], 3) for k in frames])
    types = data.types.repeat(len(frames))
    num_pairs = torch.tensor([pairs.shape[1]])
    atomic = model.atomic_energies_from_pairs(positions, torch.eye(3, dtype=positions.dtype), types, pairs, shifts, num_pairs)
    energies = atomic.view(len(frames), num_atoms).sum(1)
    (grad,) = torch.autograd.grad(energies.sum(), positions, create_graph=create_graph)
    return energies, -grad.view(len(frames), num_atoms, 3)


def evaluate(model: torch.nn.Module, data: FrameSet, frames: List[int]) -> Dict[str, float]:
    """RMSE of energy per atom (eV/atom) and of force components (eV/angstrom) over ``frames``."""
    de, df, n = [], [], data.types.shape[0]
    for k in frames:
        energy, forces = energy_and_forces(model, data, [k], create_graph=False)
        de.append((float(energy.detach()[0]) - float(data.energy[k])) / n)
        df.append(((forces.detach()[0] - data.forces[k]) ** 2).mean().item())
    return {"rmse_e_per_atom": float(np.sqrt(np.mean(np.square(de)))), "rmse_f": float(np.sqrt(np.mean(df)))}


def _split(num_frames: int, fraction: float, seed: int):
    order = np.random.default_rng(seed).permutation(num_frames)
    num_val = max(1, int(round(fraction * num_frames)))
    return sorted(order[num_val:].tolist()), sorted(order[:num_val].tolist())


def plot_learning_curve(csv_path: Path, png_path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    step = [int(r["step"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, label in ((axes[0], "rmse_e_per_atom", "energy RMSE (meV/atom)"), (axes[1], "rmse_f", "force RMSE (meV/Å)")):
        ax.semilogy(step, [1000 * float(r["train_" + key]) for r in rows], label="train (running)")
        ax.semilogy(step, [1000 * float(r["val_" + key]) for r in rows], label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.legend()
    fig.tight_layout()
    with atomic_path(png_path) as temporary:
        fig.savefig(temporary, dpi=100)
    plt.close(fig)


def load_trained(output_dir: str) -> torch.nn.Module:
    """The eager model of a training in ``output_dir`` (from its checkpoint), in evaluation mode, set up for MD
    (SE3Attention: the fused kernels). Cheaper than a TorchScript file for a few evaluations: no graph
    optimisation on the first calls."""
    state = torch.load(Path(output_dir) / "checkpoint.pt", weights_only=False, map_location="cpu")
    model = model_from_config(TrainConfig(**state["config"]), state["type_map"])
    model.load_state_dict(state["model"])
    model.eval()
    if isinstance(model, SE3Attention):
        model.implementation = "fused"
    return model


def load_weights(model: torch.nn.Module, path: str) -> None:
    """Loads the parameters and buffers of a TorchScript model file of the same architecture into ``model``."""
    saved = torch.jit.load(path, map_location="cpu").state_dict()
    try:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) if k in model.state_dict() else v for k, v in saved.items()})
    except RuntimeError as error:
        raise ValueError(f"train: {path!r} does not have the architecture of this configuration ({error})") from None


def train(config: TrainConfig, resume: bool = False, progress: bool = True,
          on_step: Optional[Callable[[int], None]] = None) -> torch.nn.Module:
    """Trains (or resumes) and writes into config.output_dir: checkpoint.pt (resumable),
    model.pt (TorchScript, float32), learning_curve.csv and learning_curve.png. Returns the model."""
    from tqdm import tqdm

    torch.set_num_threads(config.threads)
    out = Path(config.output_dir)
    check_output_dir(out, resume)
    checkpoint_path = out / "checkpoint.pt"
    csv_path = out / "learning_curve.csv"
    frames = concatenate([load_frames(p) for p in config.data])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    model = model_from_config(config, frames.type_map)
    if isinstance(model, SE3Attention):
        model.implementation = "torch"  # the force loss needs double backward: the fused kernels give first derivatives
    data = FrameSet(frames, model)
    train_frames, val_frames = _split(len(data), config.validation_fraction, config.seed)
    val_frames = val_frames[: config.validation_frames]
    optimizer = torch.optim.Adam(model.parameters(), lr=config.start_lr)
    rng = np.random.default_rng(config.seed)
    step = 0
    if resume:
        state = torch.load(checkpoint_path, weights_only=False)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise ValueError(f"{str(checkpoint_path)!r} was written with another model configuration than this run's: "
                             f"{str(error).splitlines()[0]}") from error
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        step = state["step"]
    else:
        frame_lists = ([data.positions[k] for k in train_frames], [data.box_of(k) for k in train_frames],
                       [data.pairs[k] for k in train_frames], [data.shifts[k] for k in train_frames])
        window = (config.prior_inner, config.prior_outer)
        if config.init_model:  # warm start: keep the scales and bias its weights were trained with
            load_weights(model, config.init_model)
            set_distance_statistics(model, *frame_lists, data.types, window)
        elif isinstance(model, SE3Attention):
            set_energy_bias(model, data.types, data.energy[train_frames])
            set_distance_statistics(model, *frame_lists, data.types, window)
        else:
            set_statistics(model, *frame_lists, data.types, data.energy[train_frames], window)
        header = io.StringIO()
        csv.writer(header).writerow(["step", "lr", "train_rmse_e_per_atom", "train_rmse_f", "val_rmse_e_per_atom",
                                     "val_rmse_f", "wall_s"])
        write_text(csv_path, header.getvalue())

    def save_checkpoint() -> None:
        save_torch(checkpoint_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "rng": rng.bit_generator.state, "step": step, "config": dataclasses.asdict(config),
                                     "type_map": frames.type_map})

    num_atoms = data.types.shape[0]
    start = time.time()
    running_e: List[float] = []
    running_f: List[float] = []
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="train", unit="step")
    stopped_early = False
    while step < config.steps:
        lr = learning_rate(step, config.steps, config.start_lr, config.stop_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        pe = prefactor(lr, config.start_lr, config.start_pref_e, config.limit_pref_e)
        pf = prefactor(lr, config.start_lr, config.start_pref_f, config.limit_pref_f)
        batch = [train_frames[int(i)] for i in rng.integers(len(train_frames), size=config.batch_frames)]
        energies, forces = energy_and_forces(model, data, batch, create_graph=True)
        de2 = (((energies - data.energy[batch].to(energies.dtype)) / num_atoms) ** 2).mean()
        df2 = ((forces - torch.stack([data.forces[k] for k in batch])) ** 2).mean()
        loss = pe * de2 + pf * df2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        running_e.append(float(de2.detach()))
        running_f.append(float(df2.detach()))
        bar.update(1)
        if on_step is not None:
            on_step(step)
        over_time = config.time_limit_minutes > 0 and time.time() - start > 60 * config.time_limit_minutes
        if step % config.validate_every == 0 or step == config.steps or over_time:
            val = evaluate(model, data, val_frames)
            train_e, train_f = math.sqrt(np.mean(running_e)), math.sqrt(np.mean(running_f))
            running_e, running_f = [], []
            save_checkpoint()  # first: a learning-curve row never names a step that no checkpoint holds
            append_csv_row(csv_path, [step, f"{lr:.3e}", f"{train_e:.6f}", f"{train_f:.6f}", f"{val['rmse_e_per_atom']:.6f}",
                                      f"{val['rmse_f']:.6f}", f"{time.time() - start:.1f}"])
            bar.set_postfix(val_e=f"{1000 * val['rmse_e_per_atom']:.2f}meV/at", val_f=f"{1000 * val['rmse_f']:.0f}meV/A")
        if over_time:
            stopped_early = True
            break
    bar.close()
    save_checkpoint()
    plot_learning_curve(csv_path, out / "learning_curve.png")
    model.eval()
    if isinstance(model, SE3Attention):
        model.implementation = "fused"  # MD: the fused kernels
    save_torch(out / "model.pt", torch.jit.script(model))
    if stopped_early:
        print(f"stopped at step {step} of {config.steps}: time limit {config.time_limit_minutes} min reached")
    return model
