"""``NNPForce``: a machine-learned potential as an ordinary OpenMM force.

The model contract (every model in :mod:`openmmnnp.models` follows it, and so must a
user's own model or TorchScript file)::

    class Model(torch.nn.Module):
        type_map: List[str]    # element symbol of each atom type, index = type id
        length_unit: str       # a key of openmmnnp.units.LENGTH_IN_NM, e.g. "angstrom"
        energy_unit: str       # a key of openmmnnp.units.ENERGY_IN_KJ_PER_MOL, e.g. "eV"

        def forward(self, positions: Tensor,        # [N, 3], model length unit
                    box: Optional[Tensor],          # [3, 3] rows = box vectors, or None
                    types: Tensor) -> Tensor:       # [N] int64 -> [] energy, model unit

:func:`NNPForce` wraps such a model in :class:`OpenMMPotential`, which speaks OpenMM's
language (nm, kJ/mol, ``forward(positions, boxvectors)``), and hands it to openmm-torch's
``TorchForce``. Forces are minus the autograd gradient of the energy.
"""

from __future__ import annotations

import copy
import operator
import os
import uuid
from pathlib import Path
from typing import Optional, Sequence, Union

import openmm
import openmm.app
import torch

from openmmnnp import units
from openmmnnp._import_noise import quiet_openmmtorch
from openmmnnp.mm_overlap import warn_if_double_counting
from openmmnnp.ops.neighbors import MAX_WRAP

try:
    with quiet_openmmtorch():
        import openmmtorch
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        "openmmnnp needs openmm-torch's TorchForce: install openmm-nnp[cpu] "
        "(acellera-openmmtorch-cpu) or openmm-nnp[cu13] (acellera-openmmtorch-cu13)"
    ) from error

ModelLike = Union[str, os.PathLike, torch.nn.Module]


class OpenMMPotential(torch.nn.Module):
    """Adapts a model that follows the contract above to openmm-torch's conventions.

    Converts nm -> model length unit on the way in and model energy unit -> kJ/mol on
    the way out (the only unit conversion in openmm-nnp), selects the ML atoms of an
    ML/MM system and supplies the atom types.
    """

    def __init__(
        self,
        model: torch.jit.ScriptModule,
        types: torch.Tensor,
        atoms: Optional[torch.Tensor],
        num_particles: int,
        nm_per_length_unit: float,
        kj_per_mol_per_energy_unit: float,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("types", types)
        self.register_buffer("atoms", atoms if atoms is not None else torch.empty(0, dtype=torch.long))
        self.use_subset = atoms is not None
        self.num_particles = num_particles
        self.length_scale = 1.0 / nm_per_length_unit
        self.energy_scale = kj_per_mol_per_energy_unit
        self.max_wrap = MAX_WRAP
        # An empty tensor of the model's dtype: follows the module across devices.
        self.register_buffer("dtype_probe", torch.empty(0, dtype=dtype))

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None) -> torch.Tensor:
        """positions [num_particles, 3] nm, boxvectors [3, 3] nm or None -> energy [] kJ/mol."""
        if positions.shape[0] != self.num_particles:
            raise RuntimeError(
                "openmmnnp.NNPForce was built for "
                + str(self.num_particles)
                + " particles but the System has "
                + str(positions.shape[0])
            )
        dtype = self.dtype_probe.dtype
        if self.use_subset:
            positions = positions.index_select(0, self.atoms)
        box: Optional[torch.Tensor] = None
        if boxvectors is not None:
            # Wrapped in OpenMM's precision (float64 on Reference/CPU) before the cast to the model's:
            # a float32 position thousands of boxes away has lost the digits that distances need.
            positions = wrap_into_box(positions, boxvectors, self.max_wrap)
            box = boxvectors.to(dtype) * self.length_scale
        positions = positions.to(dtype) * self.length_scale
        energy = self.model(positions, box, self.types)
        if energy.dim() != 0:
            raise RuntimeError("openmmnnp.NNPForce: the model's forward must return the energy as a scalar tensor, got shape "
                               + str(energy.shape))
        if positions.device.type == "cpu" and not bool(torch.isfinite(energy)):  # a host value already: costs nothing
            raise RuntimeError(self.non_finite_energy_message(positions, box))
        return energy * self.energy_scale

    def non_finite_energy_message(self, positions: torch.Tensor, box: Optional[torch.Tensor]) -> str:
        """Why the energy is NaN or infinite, when the reason is atoms on top of each other (closer than 1e-3 nm)."""
        close = 1e-3 * self.length_scale
        pairs, shifts, count = torch.ops.openmmnnp.neighbor_pairs(positions.detach(), close, box, 16, False)
        message = "openmmnnp.NNPForce: the model's energy is NaN or infinite"
        if int(count[0]) > 0:
            i = int(pairs[0, 0])
            j = int(pairs[1, 0])
            if self.use_subset:
                i = int(self.atoms[i])
                j = int(self.atoms[j])
            message += (": " + str(int(count[0])) + " pair(s) of atoms lie on top of each other (closer than 0.001 nm), e.g. "
                        + "particles " + str(i) + " and " + str(j)
                        + ". Check the initial positions, or what pushed the atoms together")
        else:
            message += " for a configuration with no atoms on top of each other: the model cannot describe it"
        return message


def wrap_into_box(positions: torch.Tensor, box: torch.Tensor, max_wrap: float) -> torch.Tensor:
    """positions [N, 3] moved into the periodic cell of ``box`` [3, 3] (rows, OpenMM reduced form) by
    whole box vectors, in the positions' precision (same energy, same forces: the wrap is constant).

    Positions more than ``max_wrap`` box lengths away are left where they are, so that the neighbour
    search reports them (a broken simulation) rather than silently using them.
    """
    with torch.no_grad():
        wraps = torch.zeros_like(positions)
        rest = positions.detach().clone()
        for k in (2, 1, 0):  # reduced form: c alone has a z component, b alone (besides c) a y component
            n = torch.floor(rest[:, k] / box[k, k])
            rest = rest - n.unsqueeze(1) * box[k].to(rest.dtype).unsqueeze(0)
            wraps[:, k] = n
        too_far = (wraps.abs() > max_wrap).any(dim=1, keepdim=True) | ~torch.isfinite(wraps).all(dim=1, keepdim=True)
        wraps = torch.where(too_far, torch.zeros_like(wraps), wraps)
    return positions - wraps @ box.to(positions.dtype)


def inference_copy(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """A copy of ``module`` whose parameters do not require gradients; the original is untouched.

    A force needs gradients with respect to the positions only, but TorchScript's autodiff computes
    the gradient of every parameter that requires one on every step (about a fifth of a compressed
    se_e2_a evaluation of 12k atoms). The user's model may still be training, so it is copied.
    """
    with torch.no_grad():  # copies of leaf parameters stay leaves
        copied = copy.deepcopy(module)
    for parameter in copied.parameters():
        parameter.requires_grad_(False)
    return copied


def inlined(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """``module`` with every call inside its forward inlined (in place), so that TorchForce's freezing
    finds nothing left to inline.

    Why: ``torch.jit.freeze``, which openmm-torch applies to every model, inlines the methods that
    forward calls, records them in each inlined node's call stack, and then deletes those methods.
    When an op then raises inside the frozen module (NaN positions, a neighbour overflow), TorchScript
    formats the error's traceback from that call stack and reads the deleted methods: garbage
    function names in the message, or a segfault (exit 139) instead of the exception (SE3Attention).
    TorchForce keeps a serialised copy (saved and loaded again): its forward is the flat inlined code,
    with no call stacks, so freezing it finds no call to inline and deletes no method a node names.
    """
    torch._C._jit_pass_inline(module.forward.graph)
    return module


def load_model(model: ModelLike) -> torch.jit.ScriptModule:
    """Returns ``model`` as a TorchScript module, checking that it follows the contract.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: a file that is not TorchScript, a module that cannot be scripted, or a
            model whose attributes or ``forward`` signature do not follow the contract.
    """
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.is_dir():
            raise IsADirectoryError(f"NNPForce: {str(path)!r} is a folder, not a model file")
        if not path.is_file():
            raise FileNotFoundError(f"NNPForce: model file {str(path)!r} does not exist")
        if not os.access(path, os.R_OK):
            raise ValueError(f"NNPForce: model file {str(path)!r} is not readable")
        try:
            scripted = torch.jit.load(str(path), map_location="cpu")
        except Exception as error:
            raise ValueError(f"NNPForce: {str(path)!r} is not a TorchScript model file ({error})") from error
    elif isinstance(model, torch.jit.ScriptModule):
        scripted = model
    elif isinstance(model, torch.nn.Module):
        try:
            scripted = torch.jit.script(model)
        except Exception as error:
            raise ValueError(f"NNPForce: the model {type(model).__name__} cannot be exported to TorchScript: {error}") from error
    else:
        raise TypeError(f"NNPForce: model must be a file path or a torch.nn.Module, got {type(model).__name__}")
    _check_contract(scripted, model if isinstance(model, torch.nn.Module) else None)
    return scripted


def _check_contract(model: torch.jit.ScriptModule, original: Optional[torch.nn.Module] = None) -> None:
    """``original``: the eager module ``model`` was scripted from, if any (to explain attributes TorchScript dropped)."""
    for name in ("type_map", "length_unit", "energy_unit"):
        if not hasattr(model, name):
            if original is not None and getattr(original, name, None) == []:  # TorchScript drops empty, unannotated lists
                raise ValueError(f"NNPForce: model.{name} must be a non-empty list of element symbols, got []")
            if original is not None and hasattr(original, name):
                raise ValueError(f"NNPForce: TorchScript could not keep the model's attribute {name!r} "
                                 f"({getattr(original, name)!r}); annotate it in the class, e.g. `{name}: List[str]`")
            raise ValueError(f"NNPForce: the model has no attribute {name!r} (see the model contract in openmmnnp.force)")
    type_map = model.type_map
    if not isinstance(type_map, (list, tuple)) or not type_map or not all(isinstance(t, str) for t in type_map):
        raise ValueError(f"NNPForce: model.type_map must be a non-empty list of element symbols, got {type_map!r}")
    units.length_factor(model.length_unit)
    units.energy_factor(model.energy_unit)
    arguments = model.forward.schema.arguments[1:]  # drop self
    names = [a.name for a in arguments]
    kinds = [str(a.type) for a in arguments]
    if kinds[:3] != ["Tensor", "Optional[Tensor]", "Tensor"] or any(a.default_value is None and not a.has_default_value() for a in arguments[3:]):
        raise ValueError(
            "NNPForce: model.forward must be forward(positions: Tensor, box: Optional[Tensor], types: Tensor) -> Tensor, "
            f"got forward({', '.join(f'{n}: {k}' for n, k in zip(names, kinds))})"
        )


def _configure_checks(model: torch.jit.ScriptModule, check_frequency: Optional[int]) -> None:
    """Sets the check frequency and a registry key (read by NNPCheckReporter) on a model that has checks."""
    has_checks = all(hasattr(model, name) for name in ("check_frequency", "flags_key", "overflow_flags"))
    if check_frequency is not None:
        if isinstance(check_frequency, bool) or not isinstance(check_frequency, int) or check_frequency == 0 or check_frequency < -1:
            raise ValueError(f"NNPForce: check_frequency must be a positive integer or -1 (no checks), got {check_frequency!r}")
        if not has_checks:
            raise ValueError("NNPForce: check_frequency was given but the model has no overflow checks "
                             "(no check_frequency / overflow_flags attributes; see openmmnnp.checks)")
        model.check_frequency = check_frequency
    if not has_checks:
        return
    # Unique per force; it lives in the TorchScript module, so NNPCheckReporter finds it in the System's
    # TorchForces, also after XmlSerializer round trips. The rest is what the reporter's messages need.
    model.flags_key = f"{uuid.uuid4().hex}|{','.join(model.type_map)}|{model.length_unit}"


def _check_energy_is_scalar(model: torch.jit.ScriptModule, periodic: bool, dtype: torch.dtype) -> None:
    """Calls a copy of ``model`` once, on one atom, so that a forward returning anything but a scalar
    energy is refused here rather than in the Context (where it would fail at the first step).

    Only the output's shape is judged: a probe that raises says nothing about real inputs, whose
    errors reach the user from the Context anyway.
    """
    probe = copy.deepcopy(model)  # the call must not touch the model's state (call counters, flags)
    positions = torch.zeros(1, 3, dtype=dtype)
    box = torch.eye(3, dtype=dtype) * (10.0 / units.length_factor(model.length_unit)) if periodic else None  # 10 nm
    try:
        energy = probe(positions, box, torch.zeros(1, dtype=torch.long))
    except Exception:  # noqa: BLE001 - see the docstring
        return
    if not isinstance(energy, torch.Tensor) or energy.dim() != 0 or not energy.is_floating_point():
        shape = tuple(energy.shape) if isinstance(energy, torch.Tensor) else type(energy).__name__
        raise ValueError(f"NNPForce: model.forward must return the energy as a floating-point scalar tensor (shape ()), "
                         f"got {shape} for one atom (per-atom energies? sum them)")


def _model_dtype(model: torch.jit.ScriptModule) -> torch.dtype:
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _atom_types(type_map: Sequence[str], topology: Optional[openmm.app.Topology], atoms: Sequence[int]) -> torch.Tensor:
    if topology is None:
        if len(type_map) != 1:
            raise ValueError(f"NNPForce: the model has {len(type_map)} atom types {list(type_map)}; pass the Topology so that they can be assigned")
        return torch.zeros(len(atoms), dtype=torch.long)
    index = {symbol: i for i, symbol in enumerate(type_map)}
    topology_atoms = list(topology.atoms())
    types = []
    for a in atoms:
        atom = topology_atoms[a]
        symbol = atom.element.symbol if atom.element is not None else None
        if symbol not in index:
            raise ValueError(
                f"NNPForce: atom {a} ({atom.name} of residue {atom.residue.name} {atom.residue.id}) is element {symbol}, "
                f"which the model does not know; its type map is {list(type_map)}"
            )
        types.append(index[symbol])
    return torch.tensor(types, dtype=torch.long)


def _check_atoms(atoms: Optional[Sequence[int]], num_particles: int) -> list[int]:
    if atoms is None:
        return list(range(num_particles))
    selected = list(atoms)
    if not selected:
        raise ValueError("NNPForce: atoms is empty")
    try:
        if any(isinstance(a, bool) for a in selected):
            raise TypeError
        selected = [operator.index(a) for a in selected]
    except TypeError:
        raise ValueError(f"NNPForce: atoms must be integer indices, got {atoms!r}") from None
    bad = [a for a in selected if a < 0 or a >= num_particles]
    if bad:
        raise ValueError(f"NNPForce: atom indices {bad[:10]} are out of range for a system of {num_particles} particles")
    if len(set(selected)) != len(selected):
        seen: set[int] = set()
        dups = sorted({a for a in selected if a in seen or seen.add(a)})
        raise ValueError(f"NNPForce: atoms contains duplicate indices {dups[:10]}")
    return selected


def NNPForce(
    model: ModelLike,
    topology: Optional[openmm.app.Topology] = None,
    *,
    atoms: Optional[Sequence[int]] = None,
    system: Optional[openmm.System] = None,
    periodic: Optional[bool] = None,
    properties: Optional[dict[str, str]] = None,
    check_frequency: Optional[int] = None,
) -> openmmtorch.TorchForce:
    """Creates an openmm-torch ``TorchForce`` that applies a machine-learned potential.

    Args:
        model: path of a TorchScript model file, or a ``torch.nn.Module``, following the
            model contract of this module.
        topology: OpenMM topology; the element of each atom selects its model type.
        atoms: indices of the atoms the potential acts on (ML/MM); default all atoms.
        system: the System the force will be added to; if given, its particle count and
            periodicity are checked now rather than when a Context is created, and with ``atoms``
            a :class:`openmmnnp.mm_overlap.DoubleCountingWarning` is issued if its MM forces still
            compute interactions among those atoms (use OpenMM-ML's createMixedSystem, docs/mlmm.md).
        periodic: whether to pass box vectors to the model; default: the topology (or
            system) has a periodic box.
        properties: openmm-torch properties, e.g. ``{"useCUDAGraphs": "true"}``.
        check_frequency: every this many force evaluations (= MD steps for OpenMM's integrators),
            check the overflow flags of the model (:mod:`openmmnnp.checks`: compression-table range,
            neighbour capacity) and raise an ``OpenMMException`` from ``step()`` on an error. Default:
            the model's own (``openmm-nnp compress -f``); -1 disables. Under CUDA graphs
            (``useCUDAGraphs``) the model cannot check itself: add
            :class:`openmmnnp.NNPCheckReporter` to the Simulation instead.

    Returns:
        A ``TorchForce``: add it with ``system.addForce``; it serialises with ``XmlSerializer``.
    """
    if atoms is not None and not isinstance(atoms, (str, bytes)):
        atoms = list(atoms)  # a generator is read once: every use below sees the same indices
    scripted = load_model(model)
    _configure_checks(scripted, check_frequency)
    if topology is not None and not isinstance(topology, openmm.app.Topology):
        raise TypeError(f"NNPForce: topology must be an openmm.app.Topology, got {type(topology).__name__}")
    if topology is not None:
        num_particles = topology.getNumAtoms()
        if system is not None and system.getNumParticles() != num_particles:
            raise ValueError(f"NNPForce: the System has {system.getNumParticles()} particles but the Topology has {num_particles} atoms")
    elif system is not None:
        num_particles = system.getNumParticles()
    elif atoms is not None:
        num_particles = max(int(a) for a in atoms) + 1
    else:
        raise ValueError("NNPForce: pass the Topology (or the System) so that the atoms are known")
    selected = _check_atoms(atoms, num_particles)
    types = _atom_types(scripted.type_map, topology, selected)
    if atoms is not None and system is not None:  # ML/MM: MM terms left inside the subset would count twice
        warn_if_double_counting(system, selected)

    if periodic is None:
        # The topology's box is the user's statement; a System only "uses" periodicity once
        # some force does, which is not yet true when the NNP is its only force.
        if topology is not None:
            periodic = topology.getPeriodicBoxVectors() is not None
        else:
            periodic = system is not None and system.usesPeriodicBoundaryConditions()
    elif periodic and topology is not None and topology.getPeriodicBoxVectors() is None:
        # OpenMM would silently use its default 2 nm box
        raise ValueError("NNPForce: periodic=True but the Topology has no periodic box; set it with "
                         "topology.setPeriodicBoxVectors(...) (and the System's with setDefaultPeriodicBoxVectors)")

    _check_energy_is_scalar(scripted, bool(periodic), _model_dtype(scripted))
    potential = OpenMMPotential(
        scripted,
        types,
        torch.tensor(selected, dtype=torch.long) if atoms is not None else None,
        num_particles,
        units.length_factor(scripted.length_unit),
        units.energy_factor(scripted.energy_unit),
        _model_dtype(scripted),
    )
    force = openmmtorch.TorchForce(inlined(inference_copy(torch.jit.script(potential))), properties or {})
    force.setUsesPeriodicBoundaryConditions(bool(periodic))
    force.setName("NNPForce")  # for people: OpenMM does not serialise names (NNPCheckReporter reads the module)
    return force
