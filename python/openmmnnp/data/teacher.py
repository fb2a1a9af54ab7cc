"""Any OpenMM ``System`` as a teacher: it labels configurations and samples them by Langevin MD.

The water data (:mod:`openmmnnp.data.water`), concurrent learning and the solute models all
learn from a teacher given as an OpenMM ``System`` plus its ``Topology``: a classical force
field, AMOEBA, or anything else OpenMM can evaluate. Everything here is in OpenMM units
(nm, kJ/mol, kJ/mol/nm, K).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional, Sequence

import numpy as np
import openmm
import openmm.app
from openmm import unit

from openmmnnp.data.frames import Frames, concatenate

TIMESTEP_FS = 0.5  # flexible X-H bonds vibrate with a ~9 fs period
FRICTION_PER_PS = 1.0


def topology_type_map(topology: openmm.app.Topology) -> List[str]:
    """Element symbols of the topology in order of first appearance (water: ["O", "H"])."""
    symbols: List[str] = []
    for atom in topology.atoms():
        if atom.element is None:
            raise ValueError(f"teacher: atom {atom.index} ({atom.name} of residue {atom.residue.name}) has no element")
        if atom.element.symbol not in symbols:
            symbols.append(atom.element.symbol)
    return symbols


class Teacher:
    """Labels configurations with the energies and forces of an OpenMM System.

    Args:
        system: the teacher's System (its particle count must equal the topology's atom count).
        topology: the atoms; their elements give the types.
        type_map: element symbol of each type; default: the topology's elements in order of
            first appearance. Every element of the topology must be in it.
        platform: OpenMM platform name used to evaluate the teacher.
    """

    def __init__(self, system: openmm.System, topology: openmm.app.Topology, type_map: Optional[Sequence[str]] = None,
                 platform: str = "CPU") -> None:
        if not isinstance(system, openmm.System):
            raise TypeError(f"teacher: system must be an openmm.System, got {type(system).__name__}")
        if system.getNumParticles() != topology.getNumAtoms():
            raise ValueError(f"teacher: the System has {system.getNumParticles()} particles but the Topology has "
                             f"{topology.getNumAtoms()} atoms")
        elements = topology_type_map(topology)
        self.type_map = list(type_map) if type_map is not None else elements
        missing = [e for e in elements if e not in self.type_map]
        if missing:
            raise ValueError(f"teacher: the topology has element(s) {missing} that are not in the type map {self.type_map}")
        self.system = system
        self.topology = topology
        self.types = np.array([self.type_map.index(a.element.symbol) for a in topology.atoms()], dtype=np.int64)
        self.platform = platform
        self.molecules = molecule_index(topology)
        self.bonds = np.array([(a.index, b.index) for a, b in topology.bonds()], dtype=np.int64).reshape(-1, 2)
        # Element pair of each bond ("H-O"): bond-length limits are per pair.
        symbols = [atom.element.symbol for atom in topology.atoms()]
        self.bond_kinds = ["-".join(sorted((symbols[i], symbols[j]))) for i, j in self.bonds]
        # Atom pairs of different molecules by element pair, for the contact search (N^2 booleans).
        self._different_molecules = self.molecules[:, None] != self.molecules[None, :]
        kinds = np.array(["-".join(sorted((a, b))) for a in symbols for b in symbols]).reshape(len(symbols), len(symbols))
        self._contact_kinds = {kind: (kinds == kind) & self._different_molecules
                               for kind in np.unique(kinds[self._different_molecules])} if len(symbols) > 1 else {}
        self._context: Optional[openmm.Context] = None

    @property
    def context(self) -> openmm.Context:
        """A Context that only evaluates (its integrator never steps)."""
        if self._context is None:
            self._context = openmm.Context(self.system, openmm.VerletIntegrator(0.001),
                                           openmm.Platform.getPlatformByName(self.platform))
        return self._context

    def label(self, positions: np.ndarray, boxes: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """positions [F, N, 3] nm, boxes [F, 3, 3] nm (zeros or None: no box) -> (energy [F] kJ/mol, forces [F, N, 3] kJ/mol/nm)."""
        energies = np.empty(len(positions), dtype=np.float64)
        forces = np.empty(positions.shape, dtype=np.float64)
        context = self.context
        for k, frame in enumerate(positions):
            if boxes is not None and np.any(boxes[k]):
                context.setPeriodicBoxVectors(*boxes[k])
                # Frames of an NNP System (no bonds) are wrapped atom by atom: a bonded term of the teacher
                # that does not use periodic boundaries would see a molecule split across the box.
                frame = whole_molecules(frame, boxes[k], self.molecules)
            context.setPositions(frame)
            state = context.getState(getEnergy=True, getForces=True)
            energies[k] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            forces[k] = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        return energies, forces

    def bond_lengths(self, positions: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """[F, B] length (nm) of each topology bond in each frame (nearest image in a periodic box)."""
        lengths = np.empty((len(positions), len(self.bonds)))
        for k, (frame, box) in enumerate(zip(positions, boxes)):
            d = frame[self.bonds[:, 1]] - frame[self.bonds[:, 0]]
            if np.any(box):
                for axis in (2, 1, 0):
                    d -= np.outer(np.round(d[:, axis] / box[axis, axis]), box[axis])
            lengths[k] = np.linalg.norm(d, axis=1)
        return lengths

    def domain(self, frames: Frames, bond_stretch: float, contact_fraction: float) -> "Domain":
        """The configurations this teacher's own MD visits (``frames``), widened by margins: bonds up to
        ``bond_stretch`` x the longest of each element pair, intermolecular contacts down to
        ``contact_fraction`` x the shortest of each element pair."""
        positions, boxes = frames.positions.astype(np.float64), frames.box.astype(np.float64)
        lengths = self.bond_lengths(positions, boxes)
        bonds = {kind: bond_stretch * float(lengths[:, [k == kind for k in self.bond_kinds]].max())
                 for kind in set(self.bond_kinds)}
        contacts = {pair: contact_fraction * r for pair, r in self.shortest_contacts(positions, boxes).items()}
        return Domain(bonds, contacts)

    def shortest_contacts(self, positions: np.ndarray, boxes: np.ndarray) -> dict:
        """{element pair "H-O": shortest distance (nm) between atoms of different molecules over the frames}."""
        shortest: dict = {}
        for frame, box in zip(positions, boxes):
            d = frame[None, :, :] - frame[:, None, :]
            if np.any(box):
                for axis in (2, 1, 0):
                    d -= np.round(d[..., axis] / box[axis, axis])[..., None] * box[axis]
            r = np.where(self._different_molecules, np.linalg.norm(d, axis=-1), np.inf)
            for kind, mask in self._contact_kinds.items():
                shortest[kind] = min(shortest.get(kind, np.inf), float(r[mask].min()))
        return shortest

    def outside(self, positions: np.ndarray, boxes: np.ndarray, domain: "Domain") -> np.ndarray:
        """[F] bool: a bond longer or an intermolecular contact shorter than ``domain`` allows.

        There the teacher's labels stop describing physics a local model can learn: a hydrogen that moved
        to another oxygen costs ~1e6 kJ/mol through its stretched harmonic bond (an energy of molecular
        identity, not of geometry), and a TIP3P hydrogen, which has no Lennard-Jones term, is pulled into a
        foreign oxygen without limit. Such a frame is a model failure to avoid, not a label to fit; the
        short-range prior (models.pair_repulsion) covers what lies beyond.
        """
        result = np.zeros(len(positions), dtype=bool)
        if len(self.bonds):
            limit = np.array([domain.bonds[k] for k in self.bond_kinds])
            result |= (self.bond_lengths(positions, boxes) > limit).any(axis=1)
        for k in np.nonzero(~result)[0]:
            contacts = self.shortest_contacts(positions[k:k + 1], boxes[k:k + 1])
            result[k] = any(r < domain.contacts.get(kind, 0.0) for kind, r in contacts.items())
        return result

    def frames(self, positions: np.ndarray, boxes: np.ndarray, temperatures: np.ndarray) -> Frames:
        """Labelled frames of configurations [F, N, 3] nm in boxes [F, 3, 3] nm sampled at ``temperatures`` [F] K
        (stored with whole molecules)."""
        positions = np.array([whole_molecules(p, b, self.molecules) if np.any(b) else p for p, b in zip(positions, boxes)])
        energies, forces = self.label(positions, boxes)
        return Frames(np.asarray(positions, np.float32), np.asarray(boxes, np.float32), energies,
                      forces.astype(np.float32), self.types, list(self.type_map), np.asarray(temperatures, np.float32))


@dataclasses.dataclass
class Domain:
    """Where a teacher's labels are physics a local model can learn (nm): the longest bond of each element
    pair and the shortest intermolecular contact of each element pair (see :meth:`Teacher.outside`)."""

    bonds: dict
    contacts: dict


def molecule_index(topology: openmm.app.Topology) -> np.ndarray:
    """[N] index of each atom's molecule: the connected components of the topology's bonds."""
    parent = list(range(topology.getNumAtoms()))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in topology.bonds():
        parent[root(a.index)] = root(b.index)
    roots = np.array([root(i) for i in range(len(parent))])
    return np.unique(roots, return_inverse=True)[1]


def whole_molecules(positions: np.ndarray, box: np.ndarray, molecules: np.ndarray) -> np.ndarray:
    """positions [N, 3] with every atom moved to the periodic image nearest the first atom of its molecule
    (box [3, 3] rows in OpenMM's reduced form: triclinic boxes too)."""
    first = np.zeros(molecules.max() + 1, dtype=np.int64) if len(molecules) else np.zeros(0, dtype=np.int64)
    first[molecules[::-1]] = np.arange(len(molecules))[::-1]  # lowest atom index of each molecule
    d = positions - positions[first[molecules]]
    for axis in (2, 1, 0):  # reduced form: c, then b, then a
        d -= np.outer(np.round(d[:, axis] / box[axis, axis]), box[axis])
    return positions[first[molecules]] + d


def langevin_frames(system: openmm.System, positions: np.ndarray, box: Optional[np.ndarray], temperature: float,
                    num_frames: int, interval_steps: int, equilibration_steps: int, seed: int, platform: str = "CPU",
                    minimize: bool = True, on_frame: Optional[Callable[[int], None]] = None) -> tuple[np.ndarray, np.ndarray]:
    """Langevin NVT (LangevinMiddle, 1/ps, 0.5 fs) of ``system`` from ``positions`` [N, 3] nm.

    Returns (positions [F, N, 3] nm, boxes [F, 3, 3] nm) of ``num_frames`` frames taken every
    ``interval_steps`` after ``equilibration_steps``; wrapped into the box. ``on_frame(k)`` is
    called after each frame (progress bars).
    """
    if num_frames < 1 or interval_steps < 1 or equilibration_steps < 0:
        raise ValueError(f"langevin_frames: need num_frames >= 1, interval_steps >= 1, equilibration_steps >= 0; got "
                         f"{num_frames}, {interval_steps}, {equilibration_steps}")
    integrator = openmm.LangevinMiddleIntegrator(temperature * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                                 TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
    if box is not None:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    if minimize:
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)
    context.setVelocitiesToTemperature(temperature * unit.kelvin, seed)
    integrator.step(equilibration_steps)
    out_positions, out_boxes = [], []
    periodic = system.usesPeriodicBoundaryConditions()
    for k in range(num_frames):
        integrator.step(interval_steps)
        state = context.getState(getPositions=True, enforcePeriodicBox=periodic)
        out_positions.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
        # A System without periodic forces has no box: the frame format stores zeros (frames.py).
        out_boxes.append(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer) if periodic
                         else np.zeros((3, 3)))
        if on_frame is not None:
            on_frame(k)
    return np.array(out_positions), np.array(out_boxes)


def sample_teacher(teacher: Teacher, positions: np.ndarray, temperatures: Sequence[float], frames_per_temperature: int,
                   interval_steps: int = 100, equilibration_steps: int = 4000, seed: int = 1,
                   box: Optional[np.ndarray] = None, progress: bool = True) -> Frames:
    """Teacher MD at each temperature from ``positions`` [N, 3] nm; frames labelled by the teacher.

    One independent trajectory per temperature (seed ``seed * 1000 + k``), a frame every
    ``interval_steps`` of 0.5 fs after ``equilibration_steps``.
    """
    if frames_per_temperature < 1:
        raise ValueError(f"sample_teacher: frames_per_temperature must be at least 1, got {frames_per_temperature}")
    if not temperatures or any(not np.isfinite(t) or t <= 0 for t in temperatures):
        raise ValueError(f"sample_teacher: temperatures must be positive (K), got {list(temperatures)}")
    parts = []
    for k, temperature in enumerate(temperatures):
        frame_positions, frame_boxes = langevin_frames(teacher.system, positions, box, temperature, frames_per_temperature,
                                                       interval_steps, equilibration_steps, seed * 1000 + k, teacher.platform)
        parts.append(teacher.frames(frame_positions, frame_boxes, np.full(frames_per_temperature, temperature)))
        if progress:
            print(f"  {temperature:.0f} K: {frames_per_temperature} frames", flush=True)
    return concatenate(parts)


def perturbed_frames(teacher: Teacher, source: Frames, count: int, atom_fraction: float, displacement_nm: float,
                     seed: int, domain: Optional[Domain] = None) -> Frames:
    """``count`` teacher-labelled copies of random ``source`` frames in which a random ``atom_fraction`` of the
    atoms is displaced by Gaussian noise of ``displacement_nm`` per component (DP-GEN's perturbed initial data).

    MD of the teacher never leaves its molecules' bonded geometry, so a model trained on it alone does not
    know what a stretched bond or a close contact costs, and its own MD can fall into such holes. A few
    distorted atoms per frame label those regions while the rest of the frame stays liquid. With a
    ``domain``, draws are repeated until ``count`` frames lie inside it (at most 20 x ``count`` draws).
    """
    if count < 1 or not 0 < atom_fraction <= 1 or not displacement_nm > 0:
        raise ValueError(f"perturbed_frames: need count >= 1, 0 < atom_fraction <= 1, displacement > 0; got {count}, "
                         f"{atom_fraction}, {displacement_nm}")
    rng = np.random.default_rng(seed)
    n = source.positions.shape[1]
    moved = max(1, int(round(atom_fraction * n)))
    kept_picks, kept_positions = [], []
    for _ in range(20 * count):
        pick = int(rng.integers(len(source)))
        frame = source.positions[pick].astype(np.float64)
        atoms = rng.choice(n, size=moved, replace=False)
        frame[atoms] += rng.normal(scale=displacement_nm, size=(moved, 3))
        box = source.box[pick : pick + 1].astype(np.float64)
        if domain is not None and teacher.outside(frame[None], box, domain)[0]:
            continue
        kept_picks.append(pick)
        kept_positions.append(frame)
        if len(kept_picks) == count:
            break
    picks = np.array(kept_picks, dtype=np.int64)
    return teacher.frames(np.array(kept_positions).reshape(-1, n, 3), source.box[picks].astype(np.float64),
                          source.temperature[picks])
