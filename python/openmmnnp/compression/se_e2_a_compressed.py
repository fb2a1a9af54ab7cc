"""se_e2_a with tabulated embedding nets fused with GᵀR (DeePMD-kit's compressed model).

Only ``embedding_contract`` changes: instead of running each embedding net on its edges and
storing G [E, M], the fused op ``torch.ops.openmmnnp.tabulate_fusion`` evaluates the polynomial
tables in registers and accumulates G ⊗ R̂ per atom, skipping padded edges. Forces come from
autograd through the op's backward.
"""

import warnings
from typing import List

import torch

from openmmnnp.models.se_e2_a import SeE2A
from openmmnnp.ops.tabulate import tabulate_fusion


class SeE2ACompressed(SeE2A):
    """An :class:`SeE2A` whose embedding nets are replaced by polynomial tables.

    Args (beyond SeE2A's):
        table: [num_embeddings, num_intervals, M, 6] coefficients (see openmmnnp.compression.tables).
        table_info: [5] (lower, upper, upper2, stride, stride2).
        check_frequency: every this many calls, check whether some ŝ lies outside the accurate
            first table [lower, upper) (a warning on the CPU; ``table_overflow`` is set to 1 on
            other devices, without a host sync). -1 disables the check (``dp compress`` default).
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

    def embedding_contract(self, s_hat: torch.Tensor, r_hat: torch.Tensor, center: torch.Tensor,
                           center_type: torch.Tensor, neighbor_type: torch.Tensor, valid: torch.Tensor,
                           num_atoms: int) -> torch.Tensor:
        """T_i = 1/sum(sel) sum_j G(s_hat_ij) (x) r_hat_ij by the fused table op: edges [E] -> [N, M, 4]."""
        net_index = neighbor_type if self.type_one_side else center_type * self.ntypes + neighbor_type
        table_index = torch.where(valid, net_index, torch.full_like(net_index, -1))
        if self.check_frequency > 0:
            self.calls += 1
            if self.calls % self.check_frequency == 0:
                self.check_table_range(s_hat, valid)
        table = self.table.to(s_hat.dtype)
        return tabulate_fusion(table, self.table_info, s_hat, r_hat, center.long(), table_index, num_atoms) / float(self.sel_total)

    def check_table_range(self, s_hat: torch.Tensor, valid: torch.Tensor) -> None:
        """Flags ŝ outside [lower, upper): accurate there, less so in the extrapolation table."""
        lower = self.table_info[0].to(s_hat.dtype)
        upper = self.table_info[1].to(s_hat.dtype)
        outside = (valid & ((s_hat < lower) | (s_hat >= upper))).any()
        if s_hat.device.type == "cpu":
            if bool(outside):
                warnings.warn("SeE2ACompressed: some neighbour distances lie outside the range of the first table "
                              "(closer than the training data's smallest distance); the result is extrapolated")
        else:
            self.table_overflow.copy_(torch.maximum(self.table_overflow, outside.to(torch.long).view(1)))
