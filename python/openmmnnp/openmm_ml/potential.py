"""The ``openmmnnp`` potential of OpenMM-ML (registered through the ``openmmml.potentials`` entry point).

    from openmmml import MLPotential

    potential = MLPotential("openmmnnp", modelPath="alanine-dipeptide-se_e2_a-compressed")
    system = potential.createSystem(topology)                           # everything ML
    mixed = potential.createMixedSystem(topology, mm_system, ml_atoms)  # ML/MM, mechanical embedding

``MLPotential`` arguments: ``modelPath`` (a TorchScript file, a shipped model name or a DeePMD-kit
file; see :mod:`openmmnnp.openmm_ml.model_source`), ``compress`` (default False) and ``cacheDir``.
``createSystem`` / ``createMixedSystem`` arguments, passed on to :func:`openmmnnp.NNPForce`:
``checkFrequency`` (overflow checks every N steps, -1 none) and ``properties`` (openmm-torch
properties, e.g. ``{"useCUDAGraphs": "true"}``).

The force is one ``TorchForce`` (run in C++ by openmm-torch, no Python callback per step). In a
periodic System it receives the box: OpenMM's CUDA platform hands TorchForce positions wrapped
into the box atom by atom, so a solute crossing the boundary is whole only through the model's
minimum-image neighbour list. Our models are short-ranged (a cutoff of a few angstrom), so a
solute's periodic images never reach it in a box of solvent and the energy equals the isolated
solute's (tests/openmm_ml/test_mixed_system.py).
"""

from __future__ import annotations

from typing import Iterable, Optional

import openmm
import openmm.app
from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory

from openmmnnp.openmm_ml.model_source import resolve_model

NAME = "openmmnnp"
ADD_FORCES_ARGUMENTS = ("checkFrequency", "properties")


class NNPPotentialImplFactory(MLPotentialImplFactory):
    """Creates :class:`NNPPotentialImpl` for ``MLPotential("openmmnnp", ...)``."""

    def createImpl(self, name: str, modelPath=None, compress: bool = False, cacheDir=None, **args) -> MLPotentialImpl:
        if args:
            raise TypeError(f"MLPotential({name!r}): unknown argument(s) {sorted(args)}; it accepts modelPath, compress "
                            f"and cacheDir (and createSystem/createMixedSystem accept {list(ADD_FORCES_ARGUMENTS)})")
        if modelPath is None:
            from openmmnnp.pretrained import available_models
            raise ValueError(f"MLPotential({name!r}) needs modelPath=: an openmm-nnp TorchScript model file, a DeePMD-kit "
                             f"model file (.pth, .pt, .dp) or a shipped model name {available_models()}")
        return NNPPotentialImpl(name, resolve_model(modelPath, compress, cacheDir))


class NNPPotentialImpl(MLPotentialImpl):
    """Adds one :func:`openmmnnp.NNPForce` for the ML atoms."""

    def __init__(self, name: str, model_file) -> None:
        self.name = name
        self.model_file = model_file  # TorchScript file, after any DeePMD import / compression

    def addForces(self, topology: openmm.app.Topology, system: openmm.System, atoms: Optional[Iterable[int]],
                  forceGroup: int, checkFrequency: Optional[int] = None, properties: Optional[dict] = None,
                  **args) -> None:
        from openmmnnp.force import NNPForce

        if args:
            raise TypeError(f"MLPotential({self.name!r}): unknown argument(s) {sorted(args)} of createSystem/"
                            f"createMixedSystem; it accepts {list(ADD_FORCES_ARGUMENTS)}")
        # OpenMM-ML builds the interpolated System's ML force in an empty System (no particles);
        # otherwise the System is the one the force joins, and NNPForce checks it (particle count,
        # MM terms left inside the ML region).
        target = system if system.getNumParticles() > 0 else None
        if target is not None and target.getNumParticles() != topology.getNumAtoms():
            raise ValueError(f"MLPotential({self.name!r}): the System has {target.getNumParticles()} particles but the "
                             f"Topology has {topology.getNumAtoms()} atoms")
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
        force = NNPForce(self.model_file, topology, atoms=None if atoms is None else list(atoms), system=target,
                         periodic=periodic, properties=properties, check_frequency=checkFrequency)
        force.setForceGroup(forceGroup)
        system.addForce(force)

    def getMLLongRange(self) -> bool:
        """Our models are short-ranged (OpenMM-ML >= 1.8 asks this for periodic ML/MM embedding)."""
        return False
