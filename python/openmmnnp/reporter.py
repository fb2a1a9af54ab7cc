"""``NNPCheckReporter``: the overflow checks of :mod:`openmmnnp.checks` as an OpenMM reporter.

Models check themselves every ``check_frequency`` calls, which needs the host and therefore does
not happen when openmm-torch replays the model as a CUDA graph (``useCUDAGraphs``). The flags are
still recorded on the device by the replayed kernels; this reporter reads them every ``interval``
steps (one synchronisation) through ``torch.ops.openmmnnp.registered_flags`` and warns or raises
``openmm.OpenMMException``, step-accurately on any platform::

    simulation.reporters.append(NNPCheckReporter(100))

How it finds the models of its Simulation: every TorchForce of the System whose module is an
NNPForce's (``OpenMMPotential``) carries its model's ``flags_key`` inside the TorchScript module,
which survives ``XmlSerializer`` round trips and copies of the System (a force's name does not:
OpenMM does not serialise it). Every Context made from such a force registers its own flags under
that key, so the reporter checks all of them (all replicas of a replica-exchange run, say).
"""

from __future__ import annotations

import warnings
from typing import List

import openmm
import torch

from openmmnnp import checks


def nnp_flags_tags(system: openmm.System) -> tuple[int, List[str]]:
    """(number of NNPForces, the flag tags of those whose model records overflow flags) of ``system``.

    An NNPForce is a TorchForce whose module is an ``openmmnnp.force.OpenMMPotential``; the tag is the
    first field of its model's ``flags_key`` ("" for models without checks, e.g. SE3Attention).
    """
    import openmmtorch

    count, tags = 0, []
    for force in system.getForces():
        if not openmmtorch.TorchForce.isinstance(force):
            continue
        module = openmmtorch.TorchForce.cast(force).getModule()
        model = getattr(module, "model", None)
        if model is None or not all(hasattr(module, name) for name in ("length_scale", "energy_scale", "num_particles")):
            continue  # somebody else's TorchForce
        count += 1
        key = getattr(model, "flags_key", "")
        if key:
            tags.append(key.split("|")[0])
    return count, tags


class NNPCheckReporter:
    """Checks the models of the Simulation's NNPForces every ``interval`` steps.

    Args:
        interval: steps between checks (> 0).

    Raises (at the first report):
        ValueError: the Simulation's System has no NNPForce, so there would be nothing to check.
    Warns (once) when its NNPForces' models record no overflow flags (SE3Attention: it checks its
    neighbour capacity itself, on the CPU at every step).
    """

    def __init__(self, interval: int) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0:
            raise ValueError(f"NNPCheckReporter: interval must be a positive integer, got {interval!r}")
        self.interval = interval
        self._system: openmm.System | None = None
        self._tags: set[str] = set()

    def describeNextReport(self, simulation: openmm.app.Simulation) -> dict:
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": None, "include": []}

    def _find_models(self, system: openmm.System) -> None:
        """Reads the NNPForces' tags once per System (loading a module from a TorchForce is not free)."""
        if self._system is system:
            return
        count, tags = nnp_flags_tags(system)
        if count == 0:
            raise ValueError("NNPCheckReporter: the Simulation's System has no NNPForce, so there is nothing to check "
                             "(add the reporter to a Simulation whose System holds openmmnnp.NNPForce)")
        if not tags:
            warnings.warn("NNPCheckReporter: the models of this System's NNPForces record no overflow flags "
                          "(only compressed and uncompressed se_e2_a models do); the reporter checks nothing",
                          RuntimeWarning, stacklevel=3)
        self._system = system
        self._tags = set(tags)

    def report(self, simulation: openmm.app.Simulation, state: openmm.State) -> None:
        self._find_models(simulation.system)
        registered = zip(*torch.ops.openmmnnp.registered_flags())
        mine = [(key, flags) for key, flags in registered if key.split("|")[0] in self._tags]
        if any(flags.is_cuda for _, flags in mine):
            torch.cuda.synchronize()  # the replayed graph runs on openmm-torch's stream
        errors = []
        for key, tensor in mine:
            _, type_map, length_unit = (key.split("|") + ["", ""])[:3]
            warning, error = checks.check_flags(tensor, type_map.split(","), length_unit)
            step = simulation.currentStep
            if warning:
                warnings.warn(f"openmm-nnp (step {step}): {warning}", RuntimeWarning, stacklevel=2)
            if error:
                errors.append(f"openmm-nnp (step {step}): {error}")
        if errors:
            raise openmm.OpenMMException("\n".join(errors))
