"""NNPForce rejects bad input with clear Python errors, before any C++ runs."""


from typing import List, Optional

import numpy as np
import openmm
import pytest
import torch
from analytic_models import HarmonicPairs
from test_force import make_system

from openmmnnp import NNPForce


def test_missing_model_file(tmp_path):
    _, topology, _ = make_system(3, ["Ar"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        NNPForce(tmp_path / "nope.pt", topology)


def test_file_that_is_not_torchscript(tmp_path):
    _, topology, _ = make_system(3, ["Ar"])
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"this is not a model")
    with pytest.raises(ValueError, match="not a TorchScript model file"):
        NNPForce(path, topology)


class WrongSignature(torch.nn.Module):
    type_map: List[str]

    def __init__(self) -> None:
        super().__init__()
        self.type_map = ["Ar"]
        self.length_unit = "nm"
        self.energy_unit = "kJ/mol"

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return positions.sum()


class NoTypeMap(torch.nn.Module):
    def forward(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor) -> torch.Tensor:
        return positions.sum()


class NotScriptable(HarmonicPairs):
    def forward(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.square(positions.numpy())).sum()  # numpy: not TorchScript


@pytest.mark.parametrize(
    "model, message",
    [
        (WrongSignature(), "forward must be forward"),
        (NoTypeMap(), "no attribute 'type_map'"),
        (NotScriptable(), "cannot be exported to TorchScript"),
    ],
)
def test_model_that_does_not_fit_the_contract(model, message):
    _, topology, _ = make_system(3, ["Ar"])
    with pytest.raises(ValueError, match=message):
        NNPForce(model, topology)


def test_unknown_unit():
    model = HarmonicPairs()
    model.length_unit = "furlong"
    _, topology, _ = make_system(3, ["Ar"])
    with pytest.raises(ValueError, match="unknown length unit 'furlong'"):
        NNPForce(model, topology)


@pytest.mark.parametrize(
    "atoms, message",
    [
        ([0, 1, 1], r"duplicate indices \[1\]"),
        ([0, 7], r"out of range .* 5 particles"),
        ([-1, 2], "out of range"),
        ([0, 1.5], "integer indices"),
        ([], "empty"),
    ],
)
def test_bad_atom_subsets(atoms, message):
    _, topology, _ = make_system(5, ["Ar"])
    with pytest.raises(ValueError, match=message):
        NNPForce(HarmonicPairs(), topology, atoms=atoms)


def test_element_the_model_does_not_know():
    _, topology, _ = make_system(4, ["Ar", "Xe"])
    with pytest.raises(ValueError, match=r"atom 1 .* element Xe, which the model does not know.*\['Ar'\]"):
        NNPForce(HarmonicPairs(), topology)


def test_system_with_wrong_particle_count():
    system, topology, _ = make_system(4, ["Ar"])
    system.addParticle(1.0)
    with pytest.raises(ValueError, match="System has 5 particles but the Topology has 4 atoms"):
        NNPForce(HarmonicPairs(), topology, system=system)


def test_particle_count_mismatch_found_late_is_a_clear_openmm_error():
    """Without system=..., a mismatch is still caught, as an OpenMMException naming the counts."""
    system, topology, positions = make_system(4, ["Ar"])
    system.addForce(NNPForce(HarmonicPairs(), topology))
    system.addParticle(1.0)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(list(positions) + [[0.5, 0.5, 0.5]])
    with pytest.raises(openmm.OpenMMException, match="built for 4 particles but the System has 5"):
        context.getState(getEnergy=True)


def test_multi_type_model_needs_topology():
    system, _, _ = make_system(4, ["Ar"])
    with pytest.raises(ValueError, match="pass the Topology"):
        NNPForce(HarmonicPairs(type_map=["Ar", "Ne"]), system=system)


def test_periodic_true_on_a_topology_without_a_box_is_refused_not_run_in_the_default_2nm_box():
    system, topology, positions = make_system(4, ["Ar"])  # no box
    with pytest.raises(ValueError, match="periodic=True but the Topology has no periodic box"):
        NNPForce(HarmonicPairs(), topology, periodic=True)


def test_a_folder_is_reported_as_a_folder_not_as_missing(tmp_path):
    _, topology, _ = make_system(3, ["Ar"])
    with pytest.raises(IsADirectoryError, match="is a folder, not a model file"):
        NNPForce(tmp_path, topology)


class EmptyTypeMap(HarmonicPairs):
    def __init__(self) -> None:
        super().__init__()
        self.type_map = []


class UnannotatedEmptyTypeMap(torch.nn.Module):
    """TorchScript cannot type an empty list without an annotation and drops the attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.type_map = []
        self.length_unit = "nm"
        self.energy_unit = "kJ/mol"

    def forward(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor) -> torch.Tensor:
        return positions.sum()


@pytest.mark.parametrize("model", [EmptyTypeMap(), UnannotatedEmptyTypeMap()], ids=["annotated", "unannotated"])
def test_an_empty_type_map_is_reported_as_empty_not_as_missing(model):
    _, topology, _ = make_system(3, ["Ar"])
    with pytest.raises(ValueError, match=r"type_map must be a non-empty list of element symbols, got \[\]"):
        NNPForce(model, topology)


def test_a_generator_of_atom_indices_is_used_not_reported_as_empty():
    system, topology, positions = make_system(5, ["Ar"])
    force = NNPForce(HarmonicPairs(), topology, atoms=(i for i in range(1, 4)))
    reference = NNPForce(HarmonicPairs(), topology, atoms=[1, 2, 3])
    assert force.getModule().atoms.tolist() == reference.getModule().atoms.tolist() == [1, 2, 3]
    assert NNPForce(HarmonicPairs(), atoms=(i for i in range(3))).getModule().num_particles == 3  # no topology


class PerAtomEnergies(HarmonicPairs):
    def forward(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor) -> torch.Tensor:
        return (positions * positions).sum(1)  # [N], not a scalar


def test_a_forward_that_returns_no_scalar_is_refused_by_nnpforce_not_by_the_context():
    _, topology, _ = make_system(3, ["Ar"])
    with pytest.raises(ValueError, match=r"must return the energy as a floating-point scalar tensor .* got \(1,\)"):
        NNPForce(PerAtomEnergies(), topology)
