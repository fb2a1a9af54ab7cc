"""Overflow checks during MD (openmmnnp.checks, NNPForce(check_frequency), NNPCheckReporter).

Two water molecules, one driven into the other at constant velocity by a CustomIntegrator
(x += v dt; the energy is evaluated every step but does not steer), so the call at which the
compressed model's ŝ first leaves the accurate table and then the extrapolated table is known
exactly from the model itself; the checks must fire at the first check at or after those calls.
"""

from __future__ import annotations

import math
import uuid

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest
import torch

from openmmnnp import NNPCheckReporter, NNPForce, checks, pretrained_path
from openmmnnp.compression import compress

WATERS_NM = np.array([[0.0, 0.0, 0.0], [0.0957, 0.0, 0.0], [-0.024, 0.0927, 0.0],
                      [0.25, 0.0, 0.0], [0.3457, 0.0, 0.0], [0.226, 0.0927, 0.0]])
SPEED_NM_PER_PS = -20.0  # the second water towards the first: 0.01 Å per step
DT_PS = 0.00005
STEPS = 150


@pytest.fixture(scope="module")
def narrow_model():
    """The shipped water model compressed with a short extrapolated table (extrapolate 1.3)."""
    original = torch.jit.load(str(pretrained_path("water-se_e2_a")))
    return compress(original, stride=0.01, extrapolate=1.3, check_frequency=-1).double()


def topology_and_system():
    topology = app.Topology()
    chain = topology.addChain()
    system = openmm.System()
    for molecule in range(2):
        residue = topology.addResidue("HOH", chain)
        for symbol in "OHH":
            element = app.Element.getBySymbol(symbol)
            topology.addAtom(symbol, element, residue)
            system.addParticle(element.mass)
    return topology, system


def drift_simulation(model, check_frequency=None, reporter_interval=None, platform="Reference", properties=None,
                     system=None):
    """The second water drifts into the first. ``system``: one that already holds the NNPForce (else a new one)."""
    topology, new_system = topology_and_system()
    if system is None:
        system = new_system
        system.addForce(NNPForce(model, topology, check_frequency=check_frequency, properties=properties))
    integrator = openmm.CustomIntegrator(DT_PS)
    integrator.addGlobalVariable("e", 0.0)
    integrator.addComputeGlobal("e", "energy")  # evaluates the model once per step
    integrator.addComputePerDof("x", "x + dt*v")
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName(platform))
    simulation.context.setPositions(WATERS_NM)
    velocities = np.zeros_like(WATERS_NM)
    velocities[3:, 0] = SPEED_NM_PER_PS
    simulation.context.setVelocities(velocities)
    if reporter_interval is not None:
        simulation.reporters.append(NNPCheckReporter(reporter_interval))
    return simulation


def events(model):
    """(first call with ŝ in the extrapolated table, first call beyond it), 1-based; call k sees step k-1's positions."""
    types = torch.tensor([0, 1, 1, 0, 1, 1])
    upper, upper2 = (float(x) for x in model.table_info[1:3])
    enter = beyond = None
    for call in range(1, STEPS + 1):
        positions = WATERS_NM.copy()
        positions[3:, 0] += SPEED_NM_PER_PS * DT_PS * (call - 1)
        pos = torch.tensor(positions * 10.0)  # Å
        pairs, shifts, num_pairs = model.neighbors(pos, None)
        valid = pairs[0] >= 0
        center, neighbor = pairs[0].clamp(min=0), pairs[1].clamp(min=0)
        s_hat, _ = model.normalized_environment(pos, None, types, center, neighbor, shifts, valid)
        s = s_hat[valid]
        if enter is None and bool((s >= upper).any()):
            enter = call
        if beyond is None and bool((s >= upper2).any()):
            beyond = call
    assert enter is not None and beyond is not None and beyond > enter + 10, (enter, beyond)
    return enter, beyond


def first_check_at_or_after(call: int, frequency: int) -> int:
    return frequency * math.ceil(call / frequency)


@pytest.mark.parametrize("frequency", [1, 7])
def test_warns_then_raises_at_the_first_check_after_each_event(narrow_model, frequency, capfd):
    enter, beyond = events(narrow_model)
    simulation = drift_simulation(narrow_model, check_frequency=frequency)
    warned_at = None
    for step in range(1, STEPS + 1):
        try:
            simulation.step(1)
        except openmm.OpenMMException as error:
            message = str(error)
            break
        if warned_at is None and "outside the accurate compression table" in capfd.readouterr().err:
            warned_at = step
    else:
        pytest.fail("no error although atoms left the extrapolated table")
    assert warned_at == first_check_at_or_after(enter, frequency)
    assert step == first_check_at_or_after(beyond, frequency)
    # The message names the atoms (an O-H pair of different molecules), the distance, the range and the remedy.
    assert "beyond the compression tables" in message and "larger -e" in message
    assert "atoms 0 and 4" in message or "atoms 3 and 1" in message or "atoms 4 and 0" in message or "atoms 1 and 3" in message
    assert " angstrom " in message and "first table [" in message


def test_no_checks_with_frequency_minus_one(narrow_model, capfd):
    simulation = drift_simulation(narrow_model, check_frequency=-1)
    simulation.step(STEPS)  # runs through although the table is left
    assert "compression table" not in capfd.readouterr().err


@pytest.mark.parametrize("interval", [1, 10])
def test_reporter_raises_at_its_first_report_after_leaving_the_table(narrow_model, interval):
    _, beyond = events(narrow_model)
    simulation = drift_simulation(narrow_model, check_frequency=-1, reporter_interval=interval)
    with pytest.raises(openmm.OpenMMException, match="beyond the compression tables"):
        with pytest.warns(RuntimeWarning, match="outside the accurate compression table"):
            simulation.step(STEPS)
    # The report after step n sees the calls of steps 1..n (call k sees step k-1's positions).
    assert simulation.currentStep == first_check_at_or_after(beyond, interval)


def test_reporter_still_finds_its_models_after_an_xml_round_trip(narrow_model):
    """OpenMM does not serialise force names. The reporter used to look for forces named "NNPForce <tag>",
    which come back from XmlSerializer as "TorchForce", and then checked nothing at all; it now reads the
    key that the model carries inside the TorchScript module."""
    _, beyond = events(narrow_model)
    topology, system = topology_and_system()
    system.addForce(NNPForce(narrow_model, topology, check_frequency=-1))
    copied = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    assert copied.getForce(0).getName() != "NNPForce"  # the name is gone
    simulation = drift_simulation(narrow_model, reporter_interval=1, system=copied)
    with pytest.raises(openmm.OpenMMException, match="beyond the compression tables"):
        with pytest.warns(RuntimeWarning, match="outside the accurate compression table"):
            simulation.step(STEPS)
    assert simulation.currentStep == beyond


def test_the_flag_registry_keeps_the_flags_of_every_copy_of_a_model():
    """Every Context runs its own copy of the model, and under CUDA graphs each copy registers its
    flags once, at capture. The registry kept one tensor per key (the last registered), so a reporter
    read one Context's flags and never the others'; it now keeps every live copy."""
    key = f"{uuid.uuid4().hex}|O,H|angstrom"
    first, second = checks.new_flags(0.5, 6.0), checks.new_flags(0.5, 6.0)
    for flags in (first, second, first, second):  # every call registers again: no duplicates
        torch.ops.openmmnnp.register_flags(flags, key)

    def registered():
        keys, tensors = torch.ops.openmmnnp.registered_flags()
        return sorted(t.data_ptr() for k, t in zip(keys, tensors) if k == key)

    assert registered() == sorted([first.data_ptr(), second.data_ptr()])
    torch.ops.openmmnnp.forget_flags(key)
    assert registered() == []


@pytest.mark.parametrize("model, outcome", [
    (None, pytest.raises(ValueError, match="the Simulation's System has no NNPForce, so there is nothing to check")),
    ("water-se3", pytest.warns(RuntimeWarning, match="record no overflow flags .* the reporter checks nothing")),
], ids=["no NNPForce", "a model without flags"])
def test_reporter_that_would_check_nothing_says_so(model, outcome):
    """It used to check nothing silently: on a System without NNPForce, and for models without flags."""
    topology, system = topology_and_system()
    if model is not None:
        system.addForce(NNPForce(pretrained_path(model), topology))
    simulation = app.Simulation(topology, system, openmm.VerletIntegrator(0.0001), openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(WATERS_NM)
    simulation.reporters.append(NNPCheckReporter(1))
    with outcome:
        simulation.step(2)


def test_check_message_of_atoms_on_top_of_each_other_prints_inf_not_garbage():
    """s_hat of a pair at distance 0 is infinite; the message used to round it through an int: -922337203685477.62."""
    flags = checks.new_flags(0.5, 6.0)
    checks.set_table_range(flags, 0.0, 6.69, 33.49)
    flags[checks.slot("beyond")] = 1.0
    flags[checks.slot("worst_s")] = float("inf")
    flags[checks.slot("worst_smooth")] = float("inf")
    flags[checks.slot("worst_j")] = 1.0
    _, error = checks.check_flags(flags, ["O", "H"], "angstrom")
    assert "(s_hat = inf)" in error and "atoms 0 and 1 at 0.0 angstrom" in error
    assert "922337" not in error


def test_sel_overflow_stops_the_step_with_the_remedy():
    original = torch.jit.load(str(pretrained_path("water-se_e2_a")))
    model = compress(original, check_frequency=-1).double()
    model.sel = [1, 1]
    model.sel_tensor = torch.tensor([1, 1])
    simulation = drift_simulation(model)
    with pytest.raises(openmm.OpenMMException, match="increase sel"):
        simulation.step(1)


def test_device_path_records_sel_and_capacity_without_raising_then_reports():
    """What non-CPU devices do (no host read per call), exercised on CPU tensors."""
    flags = checks.new_flags(0.5, 6.0)
    counts = torch.tensor([[3, 5], [2, 9]])
    checks.record_sel(flags, counts, torch.tensor([4, 8]))
    checks.record_pairs(flags, torch.tensor([120]), 100)
    warning, error = checks.check_flags(flags, ["O", "H"], "angstrom")
    assert warning == ""
    assert "atom 1 has 9 neighbours of type H" in error and "1 more than sel" in error
    assert "120 pairs within the cutoff but the capacity is 100" in error
    assert checks.check_flags(flags, ["O", "H"], "angstrom") == ("", "")  # reset after the check


def test_edge_distance_inverts_the_smooth_weight():
    from openmmnnp.models.env_matrix import smooth_weight

    for r in [0.3, 0.5, 0.9, 2.5, 5.9]:
        s = float(smooth_weight(torch.tensor(r, dtype=torch.float64), 0.5, 6.0))
        assert abs(checks.edge_distance(s, 0.5, 6.0) - r) < 1e-9


def test_bad_check_frequency_is_rejected():
    topology, _ = topology_and_system()
    with pytest.raises(ValueError, match="check_frequency"):
        NNPForce(pretrained_path("water-se_e2_a-compressed"), topology, check_frequency=0)
    with pytest.raises(ValueError, match="interval"):
        NNPCheckReporter(0)


def test_pairs_at_the_cutoff_are_not_reported_as_extrapolated():
    """In float32 the switch rounds to s ~ -1e-7 for neighbours just inside rcut (68 such edges in a 65-water
    frame): below the table's lower edge, but inside the first interval, not an extrapolation. They made every
    MD run's first check warn."""
    from pathlib import Path

    from openmmnnp.data import load_frames

    model = torch.jit.load(str(pretrained_path("water-se_e2_a-compressed")))
    frames = load_frames(Path(__file__).resolve().parent / "data" / "water_frames.npz")
    pos, box = torch.tensor(frames.positions[1] * 10.0), torch.tensor(frames.box[1] * 10.0)
    pairs, shifts, num_pairs = model.neighbors(pos, box)
    _, stats = model.contracted_environment_and_stats(pos, box, torch.tensor(frames.types), pairs, shifts, num_pairs)
    r = (pos[pairs[1, : int(num_pairs)].long()] - pos[pairs[0, : int(num_pairs)].long()]
         + shifts[: int(num_pairs)].float() @ box).norm(dim=1)
    assert int((r > 5.99).sum()) > 0  # the frame has neighbours right at the cutoff
    assert float(stats[0]) == 0.0 and float(stats[1]) == 0.0
    model(pos, box, torch.tensor(frames.types))
    assert checks.check_flags(model.overflow_flags, ["O", "H"], "angstrom") == ("", "")
