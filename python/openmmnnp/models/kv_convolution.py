"""Keys and values of SE(3) attention from one tensor-field convolution: coupling data and the two
pure-torch forms (packed, reference); the fused kernels live in plugin/se3_attention.

For an edge i <- j with unit vector u_ij, harmonics Y(u_ij) and channel-wise radial weights
w^{kv}_{p c}(r_ij) for every path p = (l_in, l_f, l_out) and kv in (key, value):

    kv_ij[c, l_out m] = sum_p w^{kv}_{pc} sum_{a, f} C^p[a, f, m] x_j[c, l_in a] Y_{l_f f}(u_ij)

Channel-wise (NequIP/MACE style): per edge O(C * sum_p (2 l_out + 1)) numbers, never C_in * C_out;
channels are mixed on nodes by :class:`EquivariantLinear`.

* entries: the nonzero coupling coefficients as (a, f, o, p, g) rows, read by the fused kernels
  (openmmnnp.ops.se3_attention), which build k and v in registers and never store them.
* packed: one gather of x_j, one contraction of Y with all packed coupling coefficients, one
  batched matmul for all paths, keys and values split only at the radial weights. Pure torch,
  twice differentiable: the training path (force loss).
* reference: the straightforward SE(3)-Transformer style loop over paths and over key/value,
  materialising per-edge bases [E, 2l_in+1, 2l_out+1] and full per-edge weight matrices [E, C, C]
  (diagonal here, as the weights are channel-wise). Same numbers, measured against the others.
"""

from typing import List

import torch

from openmmnnp.models.clebsch_gordan import coupling, parity_paths


class KeyValueConvolution(torch.nn.Module):
    """(x [N, C, D], neighbor [E], Y [E, D], weights [E, 2 * P * C]) -> keys, values [E, C, D]."""

    paths: List[List[int]]

    def __init__(self, lmax: int, channels: int) -> None:
        super().__init__()
        paths = parity_paths(lmax)
        dim = (lmax + 1) ** 2
        slots = sum(2 * b + 1 for _, _, b in paths)
        cg = torch.zeros(dim, dim, slots, dtype=torch.float64)
        slot_path = torch.zeros(slots, dtype=torch.long)
        slot_out = torch.zeros(slots, dim, dtype=torch.float64)
        self.paths = []
        entries: List[List[int]] = []
        values: List[float] = []
        offset = 0
        for p, (a, f, b) in enumerate(paths):
            width = 2 * b + 1
            cg[a * a:(a + 1) ** 2, f * f:(f + 1) ** 2, offset:offset + width] = coupling(a, f, b)
            slot_path[offset:offset + width] = p
            slot_out[offset:offset + width, b * b:(b + 1) ** 2] = torch.eye(width, dtype=torch.float64)
            self.paths.append([a, f, b, offset])
            block = coupling(a, f, b)
            for ia, jf, ko in (block.abs() > 1e-12).nonzero().tolist():
                entries.append([a * a + ia, f * f + jf, b * b + ko, p])
                values.append(float(block[ia, jf, ko]))
            offset += width
        self.lmax = lmax
        self.channels = channels
        self.num_paths = len(paths)
        self.num_slots = slots
        self.dim = dim
        # float64 whatever the model's dtype (cast per call: tiny), so float64 runs are exactly equivariant
        self.register_buffer("cg", cg)  # [D_in, D_f, S]
        self.register_buffer("cg_by_filter", cg.permute(1, 0, 2).reshape(dim, dim * slots).contiguous())  # [D_f, D_in*S]
        self.register_buffer("slot_path", slot_path)  # [S]
        self.register_buffer("slot_out", slot_out)  # [S, D]
        self.register_buffer("entry_index", torch.tensor(entries, dtype=torch.int32), persistent=False)  # [K, 4]: a, f, o, p
        self.register_buffer("entry_value", torch.tensor(values, dtype=torch.float64), persistent=False)  # [K]; derived: not in state_dict

    def num_weights(self) -> int:
        """Radial weights per edge: (key, value) x paths x channels."""
        return 2 * self.num_paths * self.channels

    def packed(self, x: torch.Tensor, neighbor: torch.Tensor, y: torch.Tensor, weights: torch.Tensor):
        num_edges = y.shape[0]
        xj = x.index_select(0, neighbor)  # [E, C, D]: one gather for keys and values
        basis = torch.mm(y, self.cg_by_filter.to(y.dtype)).view(num_edges, self.dim, self.num_slots)  # [E, D_in, S]
        t = torch.bmm(xj, basis)  # [E, C, S]: every path at once
        w = weights.view(num_edges, 2, self.num_paths, self.channels).index_select(2, self.slot_path)
        kv = torch.matmul(t.unsqueeze(1) * w.transpose(2, 3), self.slot_out.to(t.dtype))  # [E, 2, C, D]
        return kv[:, 0], kv[:, 1]

    def reference(self, x: torch.Tensor, neighbor: torch.Tensor, y: torch.Tensor, weights: torch.Tensor):
        num_edges = y.shape[0]
        w = weights.view(num_edges, 2, self.num_paths, self.channels)
        out: List[torch.Tensor] = []
        for kv in range(2):
            xj = x.index_select(0, neighbor)
            result = torch.zeros(num_edges, self.channels, self.dim, dtype=x.dtype, device=x.device)
            for p, path in enumerate(self.paths):
                a, f, b, offset = path[0], path[1], path[2], path[3]
                cg = self.cg.to(y.dtype)[a * a:(a + 1) * (a + 1), f * f:(f + 1) * (f + 1), offset:offset + 2 * b + 1]
                basis = torch.einsum("ef,afb->eab", y[:, f * f:(f + 1) * (f + 1)], cg)  # [E, 2a+1, 2b+1]
                weight = torch.diag_embed(w[:, kv, p, :])  # [E, C, C] full per-edge weight matrix
                mixed = torch.bmm(weight, xj[:, :, a * a:(a + 1) * (a + 1)])  # [E, C, 2a+1]
                result[:, :, b * b:(b + 1) * (b + 1)] += torch.bmm(mixed, basis)
            out.append(result)
        return out[0], out[1]
