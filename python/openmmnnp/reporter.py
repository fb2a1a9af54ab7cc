"""``NNPCheckReporter``: the overflow checks of :mod:`openmmnnp.checks` as an OpenMM reporter.

Models check themselves every ``check_frequency`` calls, which needs the host and therefore does
not happen when openmm-torch replays the model as a CUDA graph (``useCUDAGraphs``). The flags are
still recorded on the device by the replayed kernels; this reporter reads them every ``interval``
steps (one synchronisation) through ``torch.ops.openmmnnp.registered_flags`` and warns or raises
``openmm.OpenMMException``, step-accurately on any platform::

    simulation.reporters.append(NNPCheckReporter(100))
"""

from __future__ import annotations

import warnings

import openmm
import torch

from openmmnnp import checks


class NNPCheckReporter:
    """Checks the models of the Simulation's NNPForces every ``interval`` steps.

    Args:
        interval: steps between checks (> 0).
    """

    def __init__(self, interval: int) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0:
            raise ValueError(f"NNPCheckReporter: interval must be a positive integer, got {interval!r}")
        self.interval = interval

    def describeNextReport(self, simulation: openmm.app.Simulation) -> dict:
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": None, "include": []}

    def report(self, simulation: openmm.app.Simulation, state: openmm.State) -> None:
        # NNPForce names its force "NNPForce <tag>" and registers the model's flags under "<tag>|...".
        tags = {f.getName().split()[1] for f in simulation.system.getForces() if f.getName().startswith("NNPForce ")}
        registered = zip(*torch.ops.openmmnnp.registered_flags())
        mine = [(key, flags) for key, flags in registered if key.split("|")[0] in tags]
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
