"""se_e2_a with tabulated embedding nets fused with the environment matrix and GᵀR (DeePMD-kit's
compressed model).

``contracted_environment`` (the one place SeE2A makes T) is replaced by the fused op
``torch.ops.openmmnnp.env_tabulate``: from the pair list straight to T, computing each edge's
environment row, the table look-up and G ⊗ R̂ in registers, reading only the valid pairs, and
storing nothing per edge for the backward (which recomputes the edges). Forces come from autograd
through the op's backward. ``embedding_contract`` keeps the unfused path (normalised environment
tensors and the ``tabulate_fusion`` op), used as a reference.
"""

import warnings
from typing import List, Optional, Tuple

import torch

from openmmnnp.models.se_e2_a import SeE2A
from openmmnnp.ops.env_tabulate import env_tabulate
from openmmnnp.ops.tabulate import tabulate_fusion


class SeE2ACompressed(SeE2A):
    """An :class:`SeE2A` whose embedding nets are replaced by polynomial tables.

    Args (beyond SeE2A's):
        table: [num_embeddings, num_intervals, M, 6] coefficients (see openmmnnp.compression.tables).
        table_info: [5] (lower, upper, upper2, stride, stride2).
        check_frequency: every this many calls, check whether some ŝ lies outside the accurate
            first table [lower, upper) (a warning on the CPU; ``table_overflow`` is set to 1 on
            other devices, without a host sync). -1 disables the check (``dp compress`` default).
            The statistics come from the fused op at no extra cost on every call.
    """

    check_frequency: int
    calls: int

    def __init__(self, type_map: List[str], rcut: float, rcut_smth: float, sel: List[int], neuron: List[int],
                 axis_neuron: int, fitting: List[int], type_one_side: bool, table: torch.Tensor, table_info: torch.Tensor,
                 check_frequency: int = -1) -> None:
        super().__init__(type_map, rcut, rcut_smth, sel, neuron, axis_neuron, fitting, type_one_side)
        if table.dim() != 4 or table.shape[0] != len(self.embeddings) or table.shape[2] != neuron[-1] or table.shape[3] != 6:
            raise ValueError(f"SeE2ACompressed: table must be [{len(self.embeddings)}, num_intervals, {neuron[-1]}, 6], got {tuple(table.shape)}")
        self.register_buffer("table", table.detach().clone())
        self.register_buffer("table_info", table_info.detach().to(torch.float64).clone())
        self.register_buffer("table_overflow", torch.zeros(1, dtype=torch.long))
        self.check_frequency = int(check_frequency)
        self.calls = 0

    def contracted_environment(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor,
                               pairs: torch.Tensor, shifts: torch.Tensor, num_pairs: torch.Tensor) -> torch.Tensor:
        """T [N, M, 4] = 1/sum(sel) sum_j G(s_hat_ij) (x) r_hat_ij by the fused op, after the sel check."""
        t, stats = self.contracted_environment_and_stats(positions, box, types, pairs, shifts, num_pairs)
        return t

    def contracted_environment_and_stats(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor,
                                         pairs: torch.Tensor, shifts: torch.Tensor,
                                         num_pairs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(T [N, M, 4], table statistics [5] float64 on the device: see openmmnnp.ops.env_tabulate)."""
        dtype = positions.dtype
        t, counts, stats = env_tabulate(positions, box, pairs, shifts, num_pairs, types, self.davg.to(dtype),
                                        self.dstd.to(dtype), self.table.to(dtype), self.table_info, self.rcut_smth,
                                        self.rcut, self.type_one_side)
        self.check_neighbor_counts(counts, num_pairs, pairs.shape[1], positions.device.type == "cpu")
        if self.check_frequency > 0:
            self.calls += 1
            if self.calls % self.check_frequency == 0:
                self.check_table_range(stats)
        return t / float(self.sel_total), stats

    def embedding_contract(self, s_hat: torch.Tensor, r_hat: torch.Tensor, center: torch.Tensor,
                           center_type: torch.Tensor, neighbor_type: torch.Tensor, valid: torch.Tensor,
                           num_atoms: int) -> torch.Tensor:
        """Unfused reference: T_i = 1/sum(sel) sum_j G(s_hat_ij) (x) r_hat_ij by tabulate_fusion: edges [E] -> [N, M, 4]."""
        net_index = neighbor_type if self.type_one_side else center_type * self.ntypes + neighbor_type
        table_index = torch.where(valid, net_index, torch.full_like(net_index, -1))
        table = self.table.to(s_hat.dtype)
        return tabulate_fusion(table, self.table_info, s_hat, r_hat, center, table_index, num_atoms) / float(self.sel_total)

    def check_table_range(self, stats: torch.Tensor) -> None:
        """Flags ŝ outside [lower, upper) (accurate there, less so in the extrapolation table) from the
        statistics of env_tabulate: a warning on the CPU, ``table_overflow`` = 1 elsewhere (no host sync)."""
        # stats = (outside, beyond, worst s_hat, its centre, its neighbour): openmmnnp.ops.env_tabulate.STAT_*
        # (TorchScript cannot read module-level constants).
        outside = (stats[0] + stats[1]) > 0
        if stats.device.type == "cpu":
            if bool(outside):
                warnings.warn("SeE2ACompressed: " + str(int(stats[0]) + int(stats[1]))
                              + " neighbour distances lie outside the range of the first table (closer than the "
                              + "training data's smallest distance; " + str(int(stats[1]))
                              + " beyond the extrapolation table); the result is extrapolated. Closest pair: atoms "
                              + str(int(stats[3])) + " and " + str(int(stats[4])) + ", s_hat = " + str(float(stats[2])))
        else:
            self.table_overflow.copy_(torch.maximum(self.table_overflow, outside.to(torch.long).view(1)))
