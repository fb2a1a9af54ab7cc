"""MD holds its temperature: the shipped water models in 65-water Langevin NVT at 300 K, CI-sized.

The full acceptance protocol (>= 8 ps after 2 ps, all shipped models, RDFs against the teacher) is
benchmarks/water_validation.py, recorded in docs/models.md. Here: 2.5 ps on the CPU platform,
averaged after 2 ps (the minimisation leaves the box cold, and a 1/ps thermostat needs about 2 ps
to restore 300 K: after 1 ps a sound model still read 275 K). For 195 atoms one temperature sample fluctuates by ~18 K; over 0.5 ps the mean
is good to ~8 K, so the bound is 300 +- 20 K: a model that heats (the old one reached 367 K in
0.5 ps) or freezes fails, a sound one passes.

The se_e2_a water model does not pass yet (issue 15, docs/models.md: it brings atoms of different
molecules together within 1 ps); its case is a strict xfail, so the day it passes the test says so.
"""

import numpy as np
import openmm
import pytest

from openmmnnp import pretrained_path
from openmmnnp.analysis import closest_contact
from openmmnnp.data.water import reference_water_box
from openmmnnp.md import langevin
from openmmnnp.systems import nnp_system


SE_E2_A_UNSTABLE = pytest.mark.xfail(strict=True, reason="issue 15: the se_e2_a water model collapses two molecules in MD")


@pytest.mark.parametrize("name", ["water-se3", pytest.param("water-se_e2_a-compressed", marks=SE_E2_A_UNSTABLE)])
def test_water_model_holds_300_K_without_close_contacts(name):
    system, topology, positions = reference_water_box(1.3)
    run = langevin("NNP", nnp_system(system, topology, pretrained_path(name)), topology, positions,
                   openmm.Platform.getPlatformByName("CPU"), steps=5000, temperature=300.0, seed=5,
                   equilibration_steps=4000, sample_interval=100, check_interval=50, progress=False)
    mean = run.after_equilibration(run.temperature).mean()
    assert abs(mean - 300.0) < 20.0, f"mean temperature {mean:.1f} K over the last 0.5 ps"
    molecule = np.array([a.residue.index for a in topology.atoms()])
    distance = closest_contact(run.positions, run.boxes, molecule)[0]
    assert distance > 0.12, f"atoms of different molecules at {10 * distance:.2f} A"
    assert run.warnings == [], run.warnings
