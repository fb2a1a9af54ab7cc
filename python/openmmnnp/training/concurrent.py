"""Concurrent learning (DP-GEN style) against any teacher that is an OpenMM ``System``.

One round:
1. **train** an ensemble of ``ensemble`` models (different seeds) on all data so far: the first
   round from scratch, later rounds starting from the previous round's models;
2. **explore**: NNP MD (:mod:`openmmnnp.training.explore`) of ensemble member 0 under each
   condition (temperature, and pressure for densities), a frame every ``explore_interval`` steps;
3. **select**: the ensemble's force deviation sigma_f (:mod:`openmmnnp.training.deviation`)
   sorts each explored frame into *accurate* (sigma_f < trust_lo), *candidate*
   (trust_lo <= sigma_f < trust_hi) or *failed* (sigma_f >= trust_hi: too far off to be a useful
   label, as in DP-GEN). A frame outside the teacher's domain is failed too: a bond of the teacher's
   topology longer than ``bond_stretch`` times the longest such bond of the first data, or two
   molecules closer than ``contact_fraction`` times their shortest contact there
   (:meth:`openmmnnp.data.teacher.Teacher.outside`). The ensemble may agree on such a frame (a hole
   they share), but the teacher's labels there are not physics a local model can learn. At most
   ``max_select`` candidates, drawn at random, are
4. **labelled** by the teacher and added to the data.

Rounds repeat ``rounds`` times or until the accurate fraction reaches ``converged_fraction``;
then member 0 is trained ``final_steps`` more on all data into ``model.pt``. The first data are
the teacher's own MD frames. Everything is written into ``output_dir`` (atomically): ``data/``
(frame files), ``round-NN/`` (each member's training, ``exploration.csv``), ``rounds.csv`` and
``rounds.md`` (the per-round table), ``final/`` and ``model.pt``. Units: OpenMM's (nm, K, bar,
kJ/mol/nm for force deviations).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import multiprocessing
import queue
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from openmmnnp import units
from openmmnnp.atomic_write import atomic_path, save_torch, write_text
from openmmnnp.data.frames import Frames, concatenate, load_frames, save_frames
from openmmnnp.data.teacher import Teacher
from openmmnnp.training.deviation import max_force_deviation, model_forces
from openmmnnp.training.explore import Condition, Trajectory, explore
from openmmnnp.models.se_e2_a import SeE2A
from openmmnnp.training.trainer import TrainConfig, load_trained

ROUND_COLUMNS = ["round", "training_frames", "validation_force_rmse", "explored_frames", "accurate", "candidate",
                 "failed", "outside_domain", "stopped_trajectories", "selected", "labelled", "mean_deviation", "wall_s"]


@dataclasses.dataclass
class LearnConfig:
    """Settings of :func:`learn` (units: steps of 0.5 fs, K, bar, kJ/mol/nm)."""

    output_dir: str
    train: TrainConfig  # model and optimiser settings; data, output_dir, steps, seed and init_model are set per member
    conditions: List[Condition]
    ensemble: int = 4
    rounds: int = 3
    first_steps: int = 4000
    round_steps: int = 2000
    round_start_lr: float = 1e-3  # warm-started rounds begin lower: the models are already trained
    final_steps: int = 8000
    explore_steps: int = 4000
    explore_interval: int = 50
    trust_lo: float = 100.0
    trust_hi: float = 500.0
    max_select: int = 100
    bond_stretch: float = 1.3  # bonds up to this x their longest in the first data are inside the teacher's domain
    contact_fraction: float = 0.9  # intermolecular contacts down to this x their shortest there are inside it
    converged_fraction: float = 0.99
    jobs: int = 2
    seed: int = 1

    def validate(self) -> None:
        """Raises ValueError naming the first bad setting (before any work starts)."""
        if self.ensemble < 2:
            raise ValueError(f"learn: the ensemble needs at least 2 models to measure a deviation, got {self.ensemble}")
        if not (np.isfinite(self.trust_lo) and np.isfinite(self.trust_hi)) or not 0 <= self.trust_lo < self.trust_hi:
            raise ValueError(f"learn: the trust window [{self.trust_lo}, {self.trust_hi}) kJ/mol/nm is empty; "
                             "need 0 <= trust_lo < trust_hi")
        for name in ("rounds", "first_steps", "explore_steps", "explore_interval", "max_select", "jobs"):
            if getattr(self, name) < 1:
                raise ValueError(f"learn: {name} must be at least 1, got {getattr(self, name)}")
        for name in ("round_steps", "final_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"learn: {name} must be >= 0, got {getattr(self, name)}")
        if self.explore_interval > self.explore_steps:
            raise ValueError(f"learn: explore_interval {self.explore_interval} exceeds explore_steps {self.explore_steps}")
        if not self.conditions:
            raise ValueError("learn: no exploration conditions (temperatures)")
        if not self.bond_stretch > 1 or not 0 < self.contact_fraction <= 1:
            raise ValueError(f"learn: need bond_stretch > 1 and 0 < contact_fraction <= 1, got {self.bond_stretch}, "
                             f"{self.contact_fraction}")
        if not 0 < self.converged_fraction <= 1:
            raise ValueError(f"learn: converged_fraction must be in (0, 1], got {self.converged_fraction}")


def check_output(output_dir: str) -> Path:
    """Refuses an output folder that is a file or already holds a run (nothing of an earlier run is overwritten)."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"learn: the output folder {output_dir!r} is a file")
    if (out / "rounds.csv").exists() or (out / "data").exists() or (out / "model.pt").exists():
        raise ValueError(f"learn: {output_dir!r} already holds a concurrent-learning run; choose another folder")
    return out


def learn(config: LearnConfig, teacher: Teacher, initial: Frames, progress: bool = True,
          extra: Optional[Frames] = None) -> Path:
    """Runs concurrent learning from the ``initial`` frames (teacher MD: explorations start from them) and
    ``extra`` labelled frames (e.g. perturbed ones: trained on, never a start); returns the final model.pt."""
    from tqdm import tqdm

    config.validate()
    if initial.type_map != teacher.type_map or not np.array_equal(initial.types, teacher.types):
        raise ValueError(f"learn: the initial frames' atoms (type map {initial.type_map}) are not the teacher's "
                         f"(type map {teacher.type_map})")
    out = check_output(config.output_dir)
    (out / "data").mkdir(parents=True)
    data_files = [str(out / "data" / "initial.npz")]
    save_frames(data_files[0], initial)
    if extra is not None and len(extra):
        data_files.append(str(out / "data" / "extra.npz"))
        save_frames(data_files[-1], extra)
    rng = np.random.default_rng(config.seed)
    domain = teacher.domain(initial, config.bond_stretch, config.contact_fraction)
    previous: List[str] = []
    rows: List[Dict[str, object]] = []
    for r in range(config.rounds):
        start = time.time()
        round_dir = out / f"round-{r:02d}"
        round_dir.mkdir()
        members = _train_ensemble(config, data_files, round_dir, previous, r, progress)
        previous = [str(round_dir / f"model-{k}" / "model.pt") for k in range(config.ensemble)]
        data = concatenate([load_frames(p) for p in data_files])
        trajectories = _explore_all(config, round_dir / "model-0", teacher, initial, round_dir, r, progress)
        explored = _stack(trajectories, teacher)
        deviation = _ensemble_deviation([m.output_dir for m in members], explored, teacher.types, progress, r)
        broken = teacher.outside(explored["positions"], explored["boxes"], domain)
        accurate = (deviation < config.trust_lo) & ~broken
        failed = (deviation >= config.trust_hi) | broken
        candidates = np.nonzero(~accurate & ~failed)[0]
        chosen = np.sort(rng.choice(candidates, size=min(config.max_select, len(candidates)), replace=False))
        _write_exploration(round_dir / "exploration.csv", explored, deviation, accurate, failed, broken, chosen)
        labelled = _label(teacher, explored, chosen)
        if len(labelled):
            data_files.append(str(out / "data" / f"round-{r:02d}.npz"))
            save_frames(data_files[-1], labelled)
        total = max(len(deviation), 1)
        rows.append({"round": r, "training_frames": len(data), "validation_force_rmse": _mean_validation(members),
                     "explored_frames": len(deviation), "accurate": float(accurate.sum()) / total,
                     "candidate": float(len(candidates)) / total, "failed": float(failed.sum()) / total,
                     "outside_domain": float(broken.sum()) / total,
                     "stopped_trajectories": sum(1 for t in trajectories if t.error), "selected": len(chosen),
                     "labelled": len(labelled), "mean_deviation": float(deviation.mean()) if len(deviation) else float("nan"),
                     "wall_s": time.time() - start})
        _write_rounds(out, rows)
        if progress:
            tqdm.write(_round_summary(rows[-1], trajectories))
        if float(accurate.sum()) / total >= config.converged_fraction and not any(t.error for t in trajectories):
            if progress:
                tqdm.write(f"round {r}: {100 * config.converged_fraction:g}% of explored frames accurate: converged")
            break
    final = _train_final(config, data_files, out, previous[0], progress)
    with atomic_path(out / "model.pt") as temporary:
        shutil.copyfile(final, temporary)
    return out / "model.pt"


# ----- training ---------------------------------------------------------------------------------
def _member_config(config: LearnConfig, data_files: Sequence[str], output_dir: Path, seed: int, steps: int,
                   init_model: str, start_lr: float) -> TrainConfig:
    return dataclasses.replace(config.train, data=list(data_files), output_dir=str(output_dir), seed=seed, steps=steps,
                               init_model=init_model, start_lr=start_lr, threads=1)


def _train_ensemble(config: LearnConfig, data_files: Sequence[str], round_dir: Path, previous: Sequence[str],
                    r: int, progress: bool) -> List[TrainConfig]:
    """Trains the ensemble of round ``r`` in ``config.jobs`` processes; returns the members' configurations."""
    first = not previous
    members = [_member_config(config, data_files, round_dir / f"model-{k}", config.seed + 1000 * r + k,
                              config.first_steps if first else config.round_steps, "" if first else previous[k],
                              config.train.start_lr if first else config.round_start_lr)
               for k in range(config.ensemble)]
    _run_trainings(members, config.jobs, progress, f"round {r}: train {config.ensemble} models")
    return members


def _train_final(config: LearnConfig, data_files: Sequence[str], out: Path, init_model: str, progress: bool) -> Path:
    if config.final_steps == 0:
        return Path(init_model)
    final = _member_config(config, data_files, out / "final", config.seed, config.final_steps, init_model,
                           config.round_start_lr)
    _run_trainings([final], 1, progress, "final model")
    return out / "final" / "model.pt"


def _run_trainings(configs: List[TrainConfig], jobs: int, progress: bool, label: str) -> None:
    """Trains each configuration in its own process (one torch thread each), ``jobs`` at a time, with one
    progress bar over all their steps. A failed training raises here."""
    from tqdm import tqdm

    if jobs == 1:  # in this process: no interpreter start-ups
        for config in configs:
            with tqdm(total=config.steps, desc=label, unit="step", disable=not progress) as bar:
                _train(dataclasses.asdict(config), bar.update)
        return
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state shared with this one
    with context.Manager() as manager:
        steps_done = manager.Queue()
        total = sum(c.steps for c in configs)
        with ProcessPoolExecutor(max_workers=min(jobs, len(configs)), mp_context=context) as pool, \
                tqdm(total=total, desc=label, unit="step", disable=not progress) as bar:
            futures = [pool.submit(_train, dataclasses.asdict(c), steps_done.put) for c in configs]
            while not all(f.done() for f in futures):
                try:
                    bar.update(steps_done.get(timeout=0.5))
                except queue.Empty:
                    pass
            for future in futures:
                future.result()  # re-raises a worker's error
            bar.update(total - bar.n)


def _train(config: dict, report: Callable[[int], None]) -> None:
    """One training (also a worker process's entry point), reporting every 25 steps done to ``report``."""
    import openmmnnp  # noqa: F401 (loads the op library in a fresh process)
    from openmmnnp.training.trainer import train

    torch.set_num_threads(1)

    def on_step(step: int) -> None:
        if step % 25 == 0:
            report(25)

    train(TrainConfig(**config), progress=False, on_step=on_step)


def _mean_validation(members: List[TrainConfig]) -> float:
    """Mean over members of the last validation force RMSE, kJ/mol/nm (the trainer writes model units, eV/angstrom)."""
    values = []
    for member in members:
        rows = list(csv.DictReader(open(Path(member.output_dir) / "learning_curve.csv")))
        if rows:
            values.append(float(rows[-1]["val_rmse_f"]))
    ev_per_angstrom = units.energy_factor("eV") / units.length_factor("angstrom")
    return float(np.mean(values)) * ev_per_angstrom if values else float("nan")


# ----- exploration and selection ----------------------------------------------------------------
def _explore_all(config: LearnConfig, member_dir: Path, teacher: Teacher, data: Frames, round_dir: Path, r: int,
                 progress: bool) -> List[Trajectory]:
    """One exploration per condition (in ``config.jobs`` processes), each from a teacher-MD frame sampled
    nearest its temperature; se_e2_a models are compressed first (several times faster MD)."""
    from tqdm import tqdm

    explorer = _exploration_model(member_dir, round_dir)
    starts = []
    rng = np.random.default_rng(config.seed + r)
    for condition in config.conditions:
        nearest = np.nonzero(np.abs(data.temperature - condition.temperature)
                             == np.abs(data.temperature - condition.temperature).min())[0]
        k = int(rng.choice(nearest))
        starts.append((data.positions[k].astype(np.float64), data.box[k].astype(np.float64) if np.any(data.box[k]) else None))
    label = f"round {r}: explore {len(config.conditions)} conditions"
    seeds = [config.seed + 7919 * r + i for i in range(len(config.conditions))]
    if config.jobs == 1:
        return [explore(str(explorer), teacher, start, box, condition, config.explore_steps, config.explore_interval, seed,
                        teacher.platform)
                for condition, (start, box), seed in tqdm(list(zip(config.conditions, starts, seeds)), desc=label,
                                                          disable=not progress)]
    context = multiprocessing.get_context("spawn")
    xml = _serialize_teacher(teacher)
    with ProcessPoolExecutor(max_workers=min(config.jobs, len(config.conditions)), mp_context=context) as pool:
        futures = [pool.submit(_explore_worker, str(explorer), xml, teacher.type_map, start, box, condition,
                               config.explore_steps, config.explore_interval, seed, teacher.platform)
                   for condition, (start, box), seed in zip(config.conditions, starts, seeds)]
        trajectories = []
        for future in tqdm(futures, desc=label, disable=not progress):
            trajectories.append(future.result())
    return trajectories


def _exploration_model(member_dir: Path, round_dir: Path) -> Path:
    """The model file that explores: an se_e2_a model compressed (several times faster MD), else the trained file."""
    from openmmnnp.compression.compress import compress

    model = load_trained(str(member_dir))
    if not isinstance(model, SeE2A):
        return member_dir / "model.pt"
    path = round_dir / "explorer-compressed.pt"
    save_torch(path, torch.jit.script(compress(model)))
    return path


def _serialize_teacher(teacher: Teacher) -> tuple[str, object]:
    """The teacher for a worker process: (System XML, Topology; a Topology pickles, a live Context would not)."""
    import openmm

    return openmm.XmlSerializer.serialize(teacher.system), teacher.topology


def _deserialize_teacher(serialized: tuple[str, object], type_map: List[str], platform: str) -> Teacher:
    import openmm

    return Teacher(openmm.XmlSerializer.deserialize(serialized[0]), serialized[1], type_map, platform)


def _explore_worker(model_path: str, xml: tuple[str, object], type_map: List[str], start: np.ndarray,
                    box: Optional[np.ndarray], condition: Condition, steps: int, interval: int, seed: int,
                    platform: str) -> Trajectory:
    import os

    os.environ.setdefault("OPENMM_CPU_THREADS", "1")
    import openmmnnp  # noqa: F401 (loads the op library in this fresh process)

    torch.set_num_threads(1)
    teacher = _deserialize_teacher(xml, type_map, platform)
    return explore(model_path, teacher, start, box, condition, steps, interval, seed, platform)


def _stack(trajectories: List[Trajectory], teacher: Teacher) -> Dict[str, np.ndarray]:
    n = teacher.topology.getNumAtoms()
    return {"positions": np.concatenate([t.positions for t in trajectories]).reshape(-1, n, 3),
            "boxes": np.concatenate([t.boxes for t in trajectories]).reshape(-1, 3, 3),
            "temperature": np.concatenate([np.full(len(t.positions), t.condition.temperature) for t in trajectories]),
            "condition": np.concatenate([np.full(len(t.positions), t.condition.label, dtype=object) for t in trajectories])}


def _ensemble_deviation(member_dirs: Sequence[str], explored: Dict[str, np.ndarray], types: np.ndarray, progress: bool,
                        r: int) -> np.ndarray:
    """sigma_f [F] kJ/mol/nm of the explored frames over the ensemble's models (training folders)."""
    from tqdm import tqdm

    if len(explored["positions"]) == 0:
        return np.zeros(0)
    forces = [model_forces(load_trained(path), explored["positions"], explored["boxes"], types, failed_as_nan=True)
              for path in tqdm(member_dirs, desc=f"round {r}: ensemble forces", disable=not progress)]
    return max_force_deviation(forces)


def _label(teacher: Teacher, explored: Dict[str, np.ndarray], chosen: np.ndarray) -> Frames:
    """Teacher labels of the chosen frames; frames the teacher cannot evaluate (e.g. a box below twice its
    cutoff after a barostat move) are left out."""
    import openmm

    keep = []
    for k in chosen:
        try:
            teacher.label(explored["positions"][k: k + 1], explored["boxes"][k: k + 1])
            keep.append(int(k))
        except openmm.OpenMMException:
            continue
    keep_array = np.array(keep, dtype=np.int64)
    return teacher.frames(explored["positions"][keep_array], explored["boxes"][keep_array],
                          explored["temperature"][keep_array])


# ----- files ------------------------------------------------------------------------------------
def _write_exploration(path: Path, explored: Dict[str, np.ndarray], deviation: np.ndarray, accurate: np.ndarray,
                       failed: np.ndarray, broken: np.ndarray, chosen: np.ndarray) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["frame", "condition", "max_force_deviation_kj_mol_nm", "category", "selected"])
    selected = set(chosen.tolist())
    for k, sigma in enumerate(deviation):
        category = "accurate" if accurate[k] else ("outside domain" if broken[k] else ("failed" if failed[k] else "candidate"))
        writer.writerow([k, explored["condition"][k], f"{sigma:.3f}", category, int(k in selected)])
    write_text(path, text.getvalue())


def _write_rounds(out: Path, rows: List[Dict[str, object]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=ROUND_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(out / "rounds.csv", text.getvalue())
    header = ("| round | training frames | validation force RMSE (kJ/mol/nm) | explored | accurate | candidate | failed "
              "| of which outside the teacher's domain | stopped trajectories | selected | labelled | mean σ_f (kJ/mol/nm) | wall (s) |")
    lines = [header, "|" + "---|" * 13]
    for row in rows:
        lines.append(f"| {row['round']} | {row['training_frames']} | {row['validation_force_rmse']:.1f} | {row['explored_frames']} "
                     f"| {100 * row['accurate']:.1f} % | {100 * row['candidate']:.1f} % | {100 * row['failed']:.1f} % "
                     f"| {100 * row['outside_domain']:.1f} % | {row['stopped_trajectories']} | {row['selected']} | {row['labelled']} | {row['mean_deviation']:.1f} "
                     f"| {row['wall_s']:.0f} |")
    write_text(out / "rounds.md", "\n".join(lines) + "\n")


def _round_summary(row: Dict[str, object], trajectories: List[Trajectory]) -> str:
    stopped = "; ".join(f"{t.condition.label}: {t.error}" for t in trajectories if t.error)
    return (f"round {row['round']}: {row['training_frames']} training frames, validation force RMSE "
            f"{row['validation_force_rmse']:.1f} kJ/mol/nm; explored {row['explored_frames']} frames: accurate "
            f"{100 * row['accurate']:.1f} %, candidate {100 * row['candidate']:.1f} %, failed {100 * row['failed']:.1f} % "
            f"({100 * row['outside_domain']:.1f} % outside the teacher's domain); "
            f"labelled {row['labelled']}" + (f"; stopped: {stopped}" if stopped else ""))
