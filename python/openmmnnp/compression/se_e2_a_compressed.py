"""se_e2_a with tabulated embedding nets fused with GᵀR (DeePMD-kit's compressed model).

Only ``embedding_contract`` changes: instead of running each embedding net on its edges and
storing G [E, M], the fused op ``torch.ops.openmmnnp.tabulate_fusion`` evaluates the polynomial
tables in registers and accumulates G ⊗ R̂ per atom, skipping padded edges. Forces come from
autograd through the op's backward.
"""

from typing import List

import torch

from openmmnnp import checks
from openmmnnp.models.se_e2_a import SeE2A
from openmmnnp.ops.tabulate import tabulate_fusion


class SeE2ACompressed(SeE2A):
    """An :class:`SeE2A` whose embedding nets are replaced by polynomial tables.

    Args (beyond SeE2A's):
        table: [num_embeddings, num_intervals, M, 6] coefficients (see openmmnnp.compression.tables).
        table_info: [5] (lower, upper, upper2, stride, stride2).
        check_frequency: every this many calls, check the recorded table range and neighbour
            capacity (:mod:`openmmnnp.checks`: a warning for ŝ in the extrapolated table, an error
            beyond it). -1 disables the check (``dp compress`` default).
    """

    def __init__(self, type_map: List[str], rcut: float, rcut_smth: float, sel: List[int], neuron: List[int],
                 axis_neuron: int, fitting: List[int], type_one_side: bool, table: torch.Tensor, table_info: torch.Tensor,
                 check_frequency: int = -1) -> None:
        super().__init__(type_map, rcut, rcut_smth, sel, neuron, axis_neuron, fitting, type_one_side)
        if table.dim() != 4 or table.shape[0] != len(self.embeddings) or table.shape[2] != neuron[-1] or table.shape[3] != 6:
            raise ValueError(f"SeE2ACompressed: table must be [{len(self.embeddings)}, num_intervals, {neuron[-1]}, 6], got {tuple(table.shape)}")
        self.register_buffer("table", table.detach().clone())
        self.register_buffer("table_info", table_info.detach().to(torch.float64).clone())
        self.check_frequency = int(check_frequency)
        self.set_table(table, table_info)

    def set_table(self, table: torch.Tensor, table_info: torch.Tensor) -> None:
        """Installs tables (and their range in the overflow flags)."""
        self.table = table.detach().to(self.table.dtype).clone()
        self.table_info = table_info.detach().to(torch.float64).clone()
        checks.set_table_range(self.overflow_flags, float(self.table_info[0]), float(self.table_info[1]), float(self.table_info[2]))

    def record_environment(self, s_hat: torch.Tensor, valid: torch.Tensor, center: torch.Tensor,
                           neighbor: torch.Tensor, center_type: torch.Tensor) -> None:
        """Records the table range of this call's ŝ (device ops only; checked every check_frequency calls)."""
        checks.record_table(self.overflow_flags, s_hat, valid, center, neighbor, center_type, self.davg[:, 0], self.dstd[:, 0])

    def embedding_contract(self, s_hat: torch.Tensor, r_hat: torch.Tensor, center: torch.Tensor,
                           center_type: torch.Tensor, neighbor_type: torch.Tensor, valid: torch.Tensor,
                           num_atoms: int) -> torch.Tensor:
        """T_i = 1/sum(sel) sum_j G(s_hat_ij) (x) r_hat_ij by the fused table op: edges [E] -> [N, M, 4]."""
        net_index = neighbor_type if self.type_one_side else center_type * self.ntypes + neighbor_type
        table_index = torch.where(valid, net_index, torch.full_like(net_index, -1))
        table = self.table.to(s_hat.dtype)
        return tabulate_fusion(table, self.table_info, s_hat, r_hat, center.long(), table_index, num_atoms) / float(self.sel_total)
