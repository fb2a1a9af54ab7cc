"""A small random se_e2_a model and O/H configuration for the compression tests."""

import torch

from openmmnnp.models import SeE2A


def small_system(seed: int = 0):
    """(positions [12, 3] Å, box [3, 3] Å, types [12]) of a random O/H configuration, no pair closer than 0.9 Å."""
    gen = torch.Generator().manual_seed(seed)
    box = 6.0 * torch.eye(3, dtype=torch.float64)
    points = []
    while len(points) < 12:
        p = 6.0 * torch.rand(3, generator=gen, dtype=torch.float64)
        if all(((p - q + 3.0) % 6.0 - 3.0).norm() > 0.9 for q in points):
            points.append(p)
    types = torch.tensor([0, 1, 1] * 4)
    return torch.stack(points), box, types


def small_model(type_one_side: bool, positions, box) -> SeE2A:
    torch.manual_seed(3)
    model = SeE2A(["O", "H"], rcut=4.0, rcut_smth=0.5, sel=[30, 60], neuron=[4, 8], axis_neuron=2, fitting=[8],
                  type_one_side=type_one_side).double()
    with torch.no_grad():
        model.dstd.copy_(0.5 + torch.rand(2, 4, dtype=torch.float64))
        pairs, shifts, num = model.neighbors(positions, box)
        n = int(num[0])
        vectors = positions[pairs[1, :n]] - positions[pairs[0, :n]] + shifts[:n].double() @ box
        model.min_neighbor_distance.fill_(float(vectors.norm(dim=1).min()))
    return model


def energy_and_forces(model, positions, box, types):
    positions = positions.clone().requires_grad_(True)
    energy = model(positions, box, types)
    (grad,) = torch.autograd.grad(energy, positions)
    return energy.detach(), -grad
