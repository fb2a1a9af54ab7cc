"""se_e2_a with tabulated embedding nets fused with the environment matrix and GᵀR (DeePMD-kit's
compressed model).

``contracted_environment`` (the one place SeE2A makes T) is replaced by the fused op
``torch.ops.openmmnnp.env_tabulate``: from the pair list straight to T, computing each edge's
environment row, the table look-up and G ⊗ R̂ in registers, reading only the valid pairs, and
storing nothing per edge for the backward (which recomputes the edges). Forces come from autograd
through the op's backward. ``embedding_contract`` keeps the unfused path (normalised environment
tensors and the reference op ``tabulate_fusion``), used as a reference.
"""

from typing import List, Optional, Tuple

import torch

from openmmnnp import checks
from openmmnnp.models.se_e2_a import SeE2A
from openmmnnp.ops.descriptor import se_a_descriptor
from openmmnnp.ops.env_tabulate import env_tabulate
from openmmnnp.ops.reference import tabulate_fusion


class SeE2ACompressed(SeE2A):
    """An :class:`SeE2A` whose embedding nets are replaced by polynomial tables.

    Args (beyond SeE2A's):
        table: [num_embeddings, num_intervals, M, 6] coefficients (see openmmnnp.compression.tables).
        table_info: [5] (lower, upper, upper2, stride, stride2).
        check_frequency: every this many calls, check the recorded table range and neighbour
            capacity (:mod:`openmmnnp.checks`: a warning for ŝ in the extrapolated table, an error
            beyond it). -1 disables the check (``dp compress`` default). The table statistics
            come from the fused op at no extra cost on every call.
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
        checks.record_table_stats(self.overflow_flags, stats, types, self.davg[:, 0], self.dstd[:, 0])
        return self.add_empty_slots(t / float(self.sel_total), types, counts), stats

    def descriptor(self, t: torch.Tensor) -> torch.Tensor:
        """T [N, M, 4] -> D [N, M * axis_neuron] by the fused op (first derivatives only, like env_tabulate)."""
        return se_a_descriptor(t, self.axis_neuron)

    def embedding_contract(self, s_hat: torch.Tensor, r_hat: torch.Tensor, center: torch.Tensor,
                           center_type: torch.Tensor, neighbor_type: torch.Tensor, valid: torch.Tensor,
                           num_atoms: int) -> torch.Tensor:
        """Unfused reference: T_i = 1/sum(sel) sum_j G(s_hat_ij) (x) r_hat_ij by tabulate_fusion: edges [E] -> [N, M, 4]."""
        net_index = neighbor_type if self.type_one_side else center_type * self.ntypes + neighbor_type
        table_index = torch.where(valid, net_index, torch.full_like(net_index, -1))
        table = self.table.to(s_hat.dtype)
        return tabulate_fusion(table, self.table_info, s_hat, r_hat, center.long(), table_index, num_atoms) / float(self.sel_total)
