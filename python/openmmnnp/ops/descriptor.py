"""se_e2_a's descriptor D = T T[:axis]^T in one op (TorchScript-compatible front end).

See plugin/descriptor/descriptor.h. First derivatives only: compressed (inference) models use it;
:meth:`openmmnnp.models.se_e2_a.SeE2A.descriptor` is the twice-differentiable torch form.
"""

import torch


def se_a_descriptor(t: torch.Tensor, axis_neuron: int) -> torch.Tensor:
    """D[n, m * axis_neuron + a] = Σ_c t[n, m, c] t[n, a, c].

    Args:
        t: [N, M, 4] float32/float64 (CPU or CUDA).
        axis_neuron: number of columns of the second factor, 1..M.
    Returns:
        D [N, M * axis_neuron], differentiable once with respect to ``t``.
    """
    return torch.ops.openmmnnp.se_a_descriptor(t, axis_neuron)
