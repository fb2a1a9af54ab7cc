"""Overflow checks during MD: compression-table range and neighbour capacity (``sel``).

A model records, at every call and on the device (no host synchronisation), what a check needs
into its ``overflow_flags`` buffer: a 1-D tensor with the slots below. Every ``check_frequency``
calls the model itself reads the buffer once (:func:`check_flags`), warns or raises, and resets
it; a raise inside ``forward`` reaches the user as an ``openmm.OpenMMException`` from ``step()``.
Under CUDA graphs ``forward`` is replayed as kernels only, so the in-model check cannot run; the
buffer still records, and :class:`openmmnnp.reporter.NNPCheckReporter` reads it every N steps
through the process-wide registry of ``torch.ops.openmmnnp.register_flags``.

Every function here is TorchScript-compatible and shared by the models and the reporter.
"""

from typing import List, Tuple

import torch

from openmmnnp.models.env_matrix import smooth_weight

def slot(name: str) -> int:
    """Index of a named slot of the flags tensor: its layout is defined here only.

    The sticky slots come first (the worst value since the last check, reset by it), then the
    warning state, then constants the model writes once. (A function, not module constants:
    TorchScript cannot read module globals.)
    """
    return [
        "pairs_needed",  # largest pair count a neighbour search returned
        "capacity",  # capacity (max_pairs) of that search
        "sel_excess",  # largest (neighbours of one type - sel of that type) over atoms, 0 if none
        "sel_atom",  # atom of that excess
        "sel_type",  # neighbour type of that excess
        "sel_count",  # its neighbour count
        "extrapolated",  # most edges in one call with s_hat outside the first table, inside the second
        "beyond",  # most edges in one call with s_hat beyond the second table
        "worst_s",  # largest s_hat seen
        "worst_i",  # centre atom of that edge
        "worst_j",  # neighbour atom of that edge
        "worst_smooth",  # its un-normalised s(r) (gives the distance back, see edge_distance)
        "warned",  # 1 while the extrapolation warning of the current event has been given
        "lower",  # constants: table range [lower, upper) accurate, [upper, upper2) extrapolated
        "upper",
        "upper2",
        "rcut_smth",  # and the cutoffs of s(r)
        "rcut",
    ].index(name)


def new_flags(rcut_smth: float, rcut: float) -> torch.Tensor:
    """A zeroed flags tensor [slot("rcut") + 1] float64 with the cutoff constants set (no table: upper = inf)."""
    flags = torch.zeros(slot("rcut") + 1, dtype=torch.float64)
    flags[slot("upper")] = float("inf")
    flags[slot("upper2")] = float("inf")
    flags[slot("lower")] = -float("inf")
    flags[slot("rcut_smth")] = rcut_smth
    flags[slot("rcut")] = rcut
    return flags


def record_pairs(flags: torch.Tensor, num_pairs: torch.Tensor, capacity: int) -> None:
    """num_pairs [1] from a neighbour search of the given capacity."""
    flags[slot("pairs_needed")] = torch.maximum(flags[slot("pairs_needed")], num_pairs[0].to(flags.dtype))
    flags[slot("capacity")] = float(capacity)


def record_sel(flags: torch.Tensor, counts: torch.Tensor, sel: torch.Tensor) -> None:
    """counts [N, T] neighbours of each type per atom, sel [T] capacities."""
    if counts.numel() == 0:
        return
    excess = (counts - sel.unsqueeze(0)).reshape(-1)
    worst = torch.argmax(excess)
    value = excess[worst].to(flags.dtype)
    better = value > flags[slot("sel_excess")]
    ntypes = counts.shape[1]
    flags[slot("sel_atom")] = torch.where(better, torch.div(worst, ntypes, rounding_mode="floor").to(flags.dtype), flags[slot("sel_atom")])
    flags[slot("sel_type")] = torch.where(better, (worst % ntypes).to(flags.dtype), flags[slot("sel_type")])
    flags[slot("sel_count")] = torch.where(better, counts.reshape(-1)[worst].to(flags.dtype), flags[slot("sel_count")])
    flags[slot("sel_excess")] = torch.where(better, value, flags[slot("sel_excess")])


def set_table_range(flags: torch.Tensor, lower: float, upper: float, upper2: float) -> None:
    """The compression tables cover s_hat in [lower, upper) accurately and [upper, upper2) extrapolated."""
    flags[slot("lower")] = lower
    flags[slot("upper")] = upper
    flags[slot("upper2")] = upper2


def record_table_stats(flags: torch.Tensor, stats: torch.Tensor, types: torch.Tensor, davg: torch.Tensor,
                       dstd: torch.Tensor) -> None:
    """Records the table range of one call from the statistics [5] of the fused op env_tabulate
    (edges outside the first table, beyond the second, worst s_hat, its centre, its neighbour;
    centre -1 without valid edges); types [N]; davg, dstd [T]: the normalisation
    s_hat = (s - davg[t]) / dstd[t] of the first environment column (gives s(r) back)."""
    if types.shape[0] == 0:  # no atoms, no edges: nothing to record (and no type to look up)
        return
    stats = stats.detach().to(flags.dtype)
    flags[slot("extrapolated")] = torch.maximum(flags[slot("extrapolated")], stats[0])
    flags[slot("beyond")] = torch.maximum(flags[slot("beyond")], stats[1])
    better = (stats[3] >= 0) & (stats[2] > flags[slot("worst_s")])
    t = types.index_select(0, stats[3].clamp(min=0).to(torch.long).view(1)).squeeze(0)
    smooth = stats[2] * dstd[t].to(flags.dtype) + davg[t].to(flags.dtype)
    flags[slot("worst_i")] = torch.where(better, stats[3], flags[slot("worst_i")])
    flags[slot("worst_j")] = torch.where(better, stats[4], flags[slot("worst_j")])
    flags[slot("worst_smooth")] = torch.where(better, smooth, flags[slot("worst_smooth")])
    flags[slot("worst_s")] = torch.where(better, stats[2], flags[slot("worst_s")])


def edge_distance(smooth: float, rcut_smth: float, rcut: float) -> float:
    """The distance r with s(r) = smooth (s is strictly decreasing on (0, rcut)), by bisection."""
    lo, hi = 1e-9, rcut
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if float(smooth_weight(torch.tensor(mid, dtype=torch.float64), rcut_smth, rcut)) > smooth:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _short(x: float) -> str:
    """x with at most 4 decimals (TorchScript has no format specs); NaN, inf and huge values as they are
    (rounding through int would overflow and print garbage)."""
    if not abs(x) < 1e12:
        return str(x)
    return str(float(int(x * 10000.0 + (0.5 if x >= 0 else -0.5))) / 10000.0)


def check_flags(flags: torch.Tensor, type_map: List[str], length_unit: str) -> Tuple[str, str]:
    """Reads the flags once (a host synchronisation on GPUs), resets the sticky slots and returns
    (warning, error): empty strings when there is nothing to say."""
    v: List[float] = flags.detach().to(torch.float64).cpu().tolist()
    warning = ""
    error = ""
    if v[slot("pairs_needed")] > v[slot("capacity")]:
        error += ("neighbour list overflow: " + str(int(v[slot("pairs_needed")])) + " pairs within the cutoff but the capacity is "
                  + str(int(v[slot("capacity")])) + ", so pairs were dropped. Remedy: a larger capacity (sel of the model, or max_pairs). ")
    if v[slot("sel_excess")] > 0:
        t = int(v[slot("sel_type")])
        name = type_map[t] if 0 <= t < len(type_map) else str(t)
        error += ("atom " + str(int(v[slot("sel_atom")])) + " has " + str(int(v[slot("sel_count")])) + " neighbours of type " + name
                  + " within the cutoff, " + str(int(v[slot("sel_excess")])) + " more than sel for that type allows (the system is "
                  + "denser than the model was built for). Remedy: a model with a larger sel (retrain, or convert/compress with it). ")
    if v[slot("extrapolated")] > 0 or v[slot("beyond")] > 0:
        distance = edge_distance(v[slot("worst_smooth")], v[slot("rcut_smth")], v[slot("rcut")])
        where = ("atoms " + str(int(v[slot("worst_i")])) + " and " + str(int(v[slot("worst_j")])) + " at " + _short(distance) + " "
                 + length_unit + " (s_hat = " + _short(v[slot("worst_s")]) + ")")
        tables = ("first table [" + _short(v[slot("lower")]) + ", " + _short(v[slot("upper")]) + "), extrapolated table up to "
                  + _short(v[slot("upper2")]))
        if v[slot("beyond")] > 0:
            error += (str(int(v[slot("beyond")])) + " neighbour pairs lie beyond the compression tables (" + tables + "), so energies and "
                      + "forces are wrong; closest: " + where + ". Remedy: recompress with a larger -e (extrapolate) or a wider "
                      + "table range, or fix what pushes the atoms together. ")
        elif v[slot("warned")] == 0.0:
            warning = (str(int(v[slot("extrapolated")])) + " neighbour pairs lie outside the accurate compression table (" + tables
                       + "); results come from the coarser extrapolated table; closest: " + where)
        flags[slot("warned")] = 1.0
    else:
        flags[slot("warned")] = 0.0  # the event is over: warn again if it comes back
    flags[: slot("warned")] = 0.0  # the sticky slots come first
    return warning, error
