"""Cell-list neighbour search: the one neighbour list of openmm-nnp.

Python front end of the compiled op ``torch.ops.openmmnnp.neighbor_pairs`` (CPU and CUDA,
``plugin/neighbors/``). TorchScript-compatible: models call it inside their scripted forward.

CUDA-graph safety: the CUDA op never synchronises the host and its output shapes depend only on
``max_pairs``. The default ``max_pairs=-1`` estimates a capacity from the data (reads the box or
the positions on the host), so models running inside MD with ``useCUDAGraphs`` must pass an
explicit ``max_pairs`` (e.g. from :func:`default_max_pairs` computed once at setup).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch

# Codes the op writes into num_pairs when a check that needs data fails on the device
# (plugin/neighbors/neighbors.h); the CPU op raises instead.
NON_FINITE_POSITIONS = -1
BAD_BOX = -2
BOX_TOO_SMALL = -3
FAR_FROM_BOX = -4
# Most box lengths a position may lie outside the periodic box (kMaxWrap of neighbors.h: shifts are int16).
MAX_WRAP = 16000.0

def default_max_pairs(positions: torch.Tensor, cutoff: float, box: Optional[torch.Tensor] = None, full: bool = False) -> int:
    """Capacity for ``neighbor_pairs``: N * density * cutoff-sphere volume (/2 for a half list) * margin.

    Reads the box (or the positions' bounding box) on the host: call it once at setup, not inside
    a CUDA graph.

    Args:
        positions: [N, 3].
        cutoff: pair cutoff, length unit of positions.
        box: [3, 3] box vectors as rows, or None (the bounding box, at least one cutoff wide, is used).
        full: capacity for the full list (both orders).

    Returns:
        The capacity (>= 64).
    """
    # Checked here, where the host reads the box anyway: a NaN or singular box would otherwise give
    # a NaN or astronomic capacity and a cryptic error (the op checks them too, for explicit capacities).
    if not (cutoff > 0.0 and cutoff < float("inf")):
        raise RuntimeError("openmmnnp.neighbor_pairs: cutoff must be a positive finite number, got " + str(cutoff))
    n = positions.shape[0]
    volume = 1.0
    if box is not None:
        if box.dim() != 2 or box.shape[0] != 3 or box.shape[1] != 3:
            raise RuntimeError("openmmnnp.neighbor_pairs: box must have shape [3, 3] (rows = box vectors), got "
                               + str(box.shape))
        box64 = box.detach().to(torch.float64).cpu()
        volume = abs(float(torch.linalg.det(box64).item()))
        if not bool(torch.isfinite(box64).all()) or not volume > 0.0:
            rows: List[List[float]] = box64.tolist()
            raise RuntimeError("openmmnnp.neighbor_pairs: box must hold three finite, linearly independent box vectors "
                               + "(a zero or singular box has no volume), got " + str(rows))
    elif n > 0:
        extent = (positions.detach().amax(0) - positions.detach().amin(0)).to(torch.float64).cpu().clamp(min=cutoff)
        if bool(torch.isfinite(extent).all()):  # else the op reports the NaN or infinite positions
            volume = float(extent.prod().item())
    sphere = 4.0 / 3.0 * 3.141592653589793 * cutoff**3
    per_atom = n * sphere / max(volume, 1e-30)
    estimate = n * per_atom * (1.0 if full else 0.5)
    if box is None:  # no images: never more than all pairs
        estimate = min(estimate, n * (n - 1) * (1.0 if full else 0.5))
    # Margin over the uniform-density estimate: density fluctuations in liquids stay well below it,
    # and overflow is still detected (num_pairs) if it is exceeded.
    return int(estimate * 1.5) + 64


def neighbor_pairs(
    positions: torch.Tensor,
    cutoff: float,
    box: Optional[torch.Tensor] = None,
    max_pairs: int = -1,
    full: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs closer than ``cutoff``, by a cell list (O(N + pairs) time and memory).

    Args:
        positions: [N, 3] float32 or float64 (gradients are not tracked through the search:
            recompute the pair vectors from the outputs with ordinary torch ops).
        cutoff: pair cutoff (> 0), same length unit as positions.
        box: [3, 3] periodic box vectors (rows, OpenMM reduced form) or None for no periodicity.
            Boxes smaller than twice the cutoff are handled: every image closer than the cutoff is listed.
        max_pairs: capacity of the outputs; -1 estimates one with :func:`default_max_pairs`
            (host read: pass it explicitly under CUDA graphs).
        full: both (i, j) and (j, i) if True, else each pair once.

    Returns:
        pairs [2, max_pairs] int32 (padded with -1), shifts [max_pairs, 3] int16 with
        ``r[j] - r[i] + shifts.to(dtype) @ box`` the pair vector (zeros in padding), num_pairs [1] int64 on the
        device of positions: the true count, which may exceed max_pairs (then only max_pairs pairs
        are returned; see :func:`check_neighbor_overflow`), or a negative error code on CUDA.
    """
    if max_pairs < 0:
        max_pairs = default_max_pairs(positions, cutoff, box, full)
    return torch.ops.openmmnnp.neighbor_pairs(positions.detach(), cutoff, box, max_pairs, full)


def check_neighbor_overflow(num_pairs: torch.Tensor, max_pairs: int) -> None:
    """Raise if a neighbour search overflowed its capacity or flagged bad input on the device.

    Costs one host read of ``num_pairs`` (a synchronisation on CUDA): call it every few steps.

    Args:
        num_pairs: [1] int64, the third output of :func:`neighbor_pairs`.
        max_pairs: the capacity that call used (``pairs.shape[1]``).
    """
    count = int(num_pairs.item())
    if count == NON_FINITE_POSITIONS:
        raise RuntimeError("openmmnnp.neighbor_pairs: positions contain NaN or infinite values (the simulation has probably exploded)")
    if count == BAD_BOX:
        raise RuntimeError(
            "openmmnnp.neighbor_pairs: the box is not a finite box in OpenMM's reduced triclinic form "
            "(a=(ax,0,0), b=(bx,by,0), c=(cx,cy,cz), |bx|,|cx| <= ax/2, |cy| <= by/2)"
        )
    if count == BOX_TOO_SMALL:
        raise RuntimeError("openmmnnp.neighbor_pairs: the box is too small for the cutoff (a width below cutoff / 32)")
    if count == FAR_FROM_BOX:
        raise RuntimeError(f"openmmnnp.neighbor_pairs: a position lies more than {MAX_WRAP:.0f} box lengths outside the periodic box; wrap the positions into the box")
    if count > max_pairs:
        raise RuntimeError(
            f"openmmnnp.neighbor_pairs: {count} pairs found but the capacity max_pairs is {max_pairs}; "
            f"pairs were dropped. Pass a larger max_pairs (e.g. {int(count * 1.5)})."
        )
