"""DeePMD's se_e2_a ("smooth edition, two-body embedding, all information") potential.

Math (Zhang et al., NeurIPS 2018; DeePMD-kit v2 docs), written edge-wise:

    R_ij   = (s, s x/r, s y/r, s z/r)(r_ij)          environment row of neighbour j of atom i
    R^_ij  = (R_ij - davg[t_i]) / dstd[t_i]          normalised (davg is zero, see below)
    T_i    = 1/sum(sel) sum_j G_{t_i t_j}(R^_ij[0]) (x) R^_ij        [M, 4]
    D_i    = T_i T_i[:axis_neuron]^T                                 [M, axis_neuron]
    E      = sum_i F_{t_i}(D_i) + bias[t_i]

Edge-wise means neighbours come as a list of pairs from ``neighbor_pairs`` rather than
padded [N, sum(sel)] slots: padded slots of DeePMD hold R = 0 and, normalised, the constant
R^ = -davg/dstd. Models trained here use davg = 0 (DeePMD's ``set_davg_zero``), so an edge
contributes zero as it reaches rcut and empty slots contribute nothing; dstd still scales R.
Models imported from DeePMD (non-zero davg) set ``empty_slot_term`` [ntypes, ntypes, M, 4]
= G_ab(s^_pad) (x) R^_pad per (centre type a, neighbour type b), and each atom adds it once
per empty slot (sel[b] - its neighbours of type b) to T: see ``empty_slots``.

``sel`` (max neighbours of each type) is the capacity that sizes the pair list and the
1/sum(sel) normalisation; exceeding it is an error on the CPU at once and, on other devices, is
recorded in the ``overflow_flags`` buffer without a host synchronisation and raised at the next
check (every ``check_frequency`` calls; see :mod:`openmmnnp.checks`).
"""

import warnings


from typing import Any, Dict, List, Optional, Tuple

import torch

from openmmnnp import checks
from openmmnnp.models.env_matrix import environment_rows
from openmmnnp.models.networks import ResidualTanhNet
from openmmnnp.models.pair_repulsion import PairRepulsion
from openmmnnp.ops.neighbors import neighbor_pairs


class SeE2A(torch.nn.Module):
    """se_e2_a energy model following the openmm-nnp model contract (angstrom, eV).

    Args:
        type_map: element symbol of each type, e.g. ["O", "H"].
        rcut, rcut_smth: cutoff and start of the smooth switch, angstrom.
        sel: maximum number of neighbours of each type within rcut (a capacity).
        neuron: embedding-net widths, e.g. [8, 16, 32]; M = neuron[-1].
        axis_neuron: number of columns of T kept for the second factor of D.
        fitting: hidden widths of the per-type fitting nets.
        type_one_side: one embedding net per neighbour type (else per (centre, neighbour) pair).
    """

    type_map: List[str]
    length_unit: str
    energy_unit: str
    sel: List[int]
    neuron: List[int]
    fitting_neuron: List[int]
    check_frequency: int
    calls: int
    fit_batch: int
    flags_key: str

    def __init__(self, type_map: List[str], rcut: float = 6.0, rcut_smth: float = 0.5,
                 sel: Optional[List[int]] = None, neuron: Optional[List[int]] = None, axis_neuron: int = 4,
                 fitting: Optional[List[int]] = None, type_one_side: bool = False) -> None:
        super().__init__()
        ntypes = len(type_map)
        sel = list(sel) if sel is not None else [46, 92][:ntypes] + [46] * max(0, ntypes - 2)
        neuron = list(neuron) if neuron is not None else [8, 16, 32]
        fitting = list(fitting) if fitting is not None else [64, 64, 64]
        if len(sel) != ntypes:
            raise ValueError(f"SeE2A: sel needs one entry per type {type_map}, got {sel}")
        if not 0.0 <= rcut_smth < rcut:
            raise ValueError(f"SeE2A: need 0 <= rcut_smth < rcut, got {rcut_smth}, {rcut}")
        if not 0 < axis_neuron <= neuron[-1]:
            raise ValueError(f"SeE2A: axis_neuron must be in 1..{neuron[-1]}, got {axis_neuron}")
        self.type_map = list(type_map)
        self.length_unit = "angstrom"
        self.energy_unit = "eV"
        self.ntypes = ntypes
        self.rcut = float(rcut)
        self.rcut_smth = float(rcut_smth)
        self.sel = sel
        self.sel_total = int(sum(sel))
        self.neuron = neuron
        self.axis_neuron = int(axis_neuron)
        self.fitting_neuron = fitting
        self.type_one_side = bool(type_one_side)
        num_embeddings = ntypes if type_one_side else ntypes * ntypes
        self.embeddings = torch.nn.ModuleList([ResidualTanhNet([1] + neuron) for _ in range(num_embeddings)])
        self.fittings = torch.nn.ModuleList(
            [ResidualTanhNet([neuron[-1] * axis_neuron] + fitting + [1], linear_output=True) for _ in range(ntypes)])
        for net in self.fittings:
            torch.nn.init.zeros_(net.layers[-1].bias)
        self.register_buffer("davg", torch.zeros(ntypes, 4))
        self.register_buffer("dstd", torch.ones(ntypes, 4))
        self.register_buffer("energy_bias", torch.zeros(ntypes))
        self.register_buffer("sel_tensor", torch.tensor(sel, dtype=torch.long))
        # Smallest neighbour distance in the training data (angstrom): compression tabulates from here.
        self.register_buffer("min_neighbor_distance", torch.tensor(0.0))
        # What the overflow checks need, recorded on the device at every call (openmmnnp.checks).
        self.register_buffer("overflow_flags", checks.new_flags(self.rcut_smth, self.rcut))
        self.check_frequency = -1  # check every this many forward calls; -1: never (NNPForce can set it)
        self.fit_batch = 1024  # atoms per fitting-net batch on the CPU (see fit)
        self.calls = 0
        self.flags_key = ""  # registry key for NNPCheckReporter (set by NNPForce); "": not registered
        # DeePMD's padded neighbour slots (None: they contribute nothing, as with davg = 0).
        self.register_buffer("empty_slot_term", None)
        # Short-range prior below the training data's shortest pairs (inactive until its window is set).
        self.repulsion = PairRepulsion(self.type_map)

    def _load_from_state_dict(self, state_dict: Dict[str, Any], prefix: str, *args: Any) -> None:
        # An imported model's empty-slot term loads into a fresh model too (compress rebuilds one).
        saved = state_dict.get(prefix + "empty_slot_term")
        if saved is not None and self.empty_slot_term is None:
            self.empty_slot_term = torch.empty_like(saved)
        super()._load_from_state_dict(state_dict, prefix, *args)

    # ----- contract -------------------------------------------------------------------------
    def forward(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor) -> torch.Tensor:
        """positions [N, 3] angstrom, box [3, 3] or None, types [N] int64 -> energy [] eV."""
        energy = self.atomic_energies(positions, box, types).sum()
        self.after_call()
        return energy

    def after_call(self) -> None:
        """Registers the flags for the MD reporter and runs the overflow check when it is due."""
        if self.flags_key != "":
            torch.ops.openmmnnp.register_flags(self.overflow_flags, self.flags_key)
        self.calls += 1
        if self.check_frequency > 0 and self.calls % self.check_frequency == 0:
            warning, error = checks.check_flags(self.overflow_flags, self.type_map, self.length_unit)
            if warning != "":
                warnings.warn("openmm-nnp (call " + str(self.calls) + "): " + warning)
            if error != "":
                raise RuntimeError("openmm-nnp (call " + str(self.calls) + "): " + error)

    def atomic_energies(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor) -> torch.Tensor:
        """[N] atomic energies, eV (including the per-type bias)."""
        pairs, shifts, num_pairs = self.neighbors(positions, box)
        return self.atomic_energies_from_pairs(positions, box, types, pairs, shifts, num_pairs)

    def neighbors(self, positions: torch.Tensor, box: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Full pair list within rcut with the static capacity N * sum(sel)."""
        return neighbor_pairs(positions, self.rcut, box, positions.shape[0] * self.sel_total, True)

    def atomic_energies_from_pairs(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor,
                                   pairs: torch.Tensor, shifts: torch.Tensor, num_pairs: torch.Tensor) -> torch.Tensor:
        """Atomic energies [N] from a precomputed full pair list (training caches the lists): network plus prior."""
        t = self.contracted_environment(positions, box, types, pairs, shifts, num_pairs)
        return self.fit(t, types) + self.repulsion.atomic_energies(positions, box, types, pairs, shifts)

    # ----- pieces (compression replaces contracted_environment) -----------------------------
    def contracted_environment(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor,
                               pairs: torch.Tensor, shifts: torch.Tensor, num_pairs: torch.Tensor) -> torch.Tensor:
        """T [N, M, 4] = 1/sum(sel) sum_j G(s_hat_ij) (x) r_hat_ij from the pair list, after the sel check.

        The one place T is made: compressed models replace this method by a fused op.
        """
        num_atoms = positions.shape[0]
        center = pairs[0].clamp(min=0)
        neighbor = pairs[1].clamp(min=0)
        valid = pairs[0] >= 0
        counts = self.check_sel(num_atoms, types, center, neighbor, valid, num_pairs, pairs.shape[1],
                                positions.device.type == "cpu")
        s_hat, r_hat = self.normalized_environment(positions, box, types, center, neighbor, shifts, valid)
        t = self.embedding_contract(s_hat, r_hat, center, types.index_select(0, center),
                                    types.index_select(0, neighbor), valid, num_atoms)
        return self.add_empty_slots(t, types, counts)

    def add_empty_slots(self, t: torch.Tensor, types: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """T plus DeePMD's padded-slot term when the model has one (imported models)."""
        term = self.empty_slot_term
        if term is not None:
            t = t + self.empty_slots(term.to(t.dtype), types, counts)
        return t

    def normalized_environment(self, positions: torch.Tensor, box: Optional[torch.Tensor], types: torch.Tensor,
                               center: torch.Tensor, neighbor: torch.Tensor, shifts: torch.Tensor,
                               valid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """-> (s_hat [E], r_hat [E, 4]): normalised environment rows, zero for padded edges."""
        vectors = positions.index_select(0, neighbor) - positions.index_select(0, center)
        if box is not None:
            vectors = vectors + shifts.to(positions.dtype) @ box
        # Padded slots: a dummy vector beyond rcut (s = 0) keeps norms and gradients finite.
        far = torch.zeros_like(vectors)
        far[:, 0] = 2.0 * self.rcut
        vectors = torch.where(valid.unsqueeze(1), vectors, far)
        rows = environment_rows(vectors, self.rcut_smth, self.rcut)
        center_type = types.index_select(0, center)
        r_hat = (rows - self.davg.index_select(0, center_type)) / self.dstd.index_select(0, center_type)
        r_hat = r_hat * valid.unsqueeze(1).to(r_hat.dtype)
        return r_hat[:, 0], r_hat

    def embedding_contract(self, s_hat: torch.Tensor, r_hat: torch.Tensor, center: torch.Tensor,
                           center_type: torch.Tensor, neighbor_type: torch.Tensor, valid: torch.Tensor,
                           num_atoms: int) -> torch.Tensor:
        """T_i = 1/sum(sel) sum_j G(s_hat_ij) (x) r_hat_ij: edges [E] -> [num_atoms, M, 4]."""
        net_index = neighbor_type if self.type_one_side else center_type * self.ntypes + neighbor_type
        out = torch.zeros(num_atoms, self.neuron[-1], 4, dtype=r_hat.dtype, device=r_hat.device)
        static_shapes = r_hat.device.type != "cpu"  # no nonzero (a host sync) where CUDA graphs may run
        outputs: List[torch.Tensor] = []
        edge_lists: List[torch.Tensor] = []
        for k, net in enumerate(self.embeddings):
            selected = valid & (net_index == k)
            if static_shapes:  # every net on every edge, masked
                g = net(s_hat.unsqueeze(1)) * selected.unsqueeze(1).to(r_hat.dtype)
                out = out.index_add(0, center, g.unsqueeze(2) * r_hat.unsqueeze(1))
            else:  # each net on its own edges only, then one contraction per atom
                edges = torch.nonzero(selected).squeeze(1)
                outputs.append(net(s_hat.index_select(0, edges).unsqueeze(1)))  # [e, M]
                edge_lists.append(edges)
        if not static_shapes:
            edges = torch.cat(edge_lists)
            out = contract_by_center(torch.cat(outputs), r_hat.index_select(0, edges), center.index_select(0, edges), num_atoms)
        return out / float(self.sel_total)

    def empty_slots(self, term: torch.Tensor, types: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """DeePMD's padded slots: 1/sum(sel) sum_b (sel[b] - counts[i, b]) term[t_i, b] -> [N, M, 4].

        term [ntypes, ntypes, M, 4], counts [N, ntypes] neighbours of each type within rcut.
        One [N, ntypes^2] x [ntypes^2, M * 4] product: the weight of (a, b) is atom i's empty
        slots of type b when t_i = a, else 0. Nothing here depends on positions (no gradient).
        """
        ntypes = term.shape[0]
        empty = (self.sel_tensor.unsqueeze(0) - counts).to(term.dtype) / float(self.sel_total)  # [N, ntypes]
        center = torch.nn.functional.one_hot(types, ntypes).to(term.dtype)  # [N, ntypes]
        weights = (center.unsqueeze(2) * empty.unsqueeze(1)).reshape(types.shape[0], ntypes * ntypes)
        return torch.mm(weights, term.reshape(ntypes * ntypes, -1)).view(types.shape[0], term.shape[2], 4)

    def descriptor(self, t: torch.Tensor) -> torch.Tensor:
        """T [N, M, 4] -> D [N, M * axis_neuron] = flatten(T T[:axis]^T)."""
        d = torch.bmm(t, t[:, : self.axis_neuron, :].transpose(1, 2))
        return d.reshape(t.shape[0], t.shape[1] * self.axis_neuron)

    def fit(self, t: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """Per-type fitting nets of the descriptors plus energy bias: T [N, M, 4] -> atomic energies [N]."""
        energies = self.energy_bias.index_select(0, types).to(t.dtype)
        if t.device.type != "cpu":  # static shapes (CUDA graphs): every net on every atom, masked
            d = self.descriptor(t)
            for k, net in enumerate(self.fittings):
                energies = energies + net(d).squeeze(1) * (types == k).to(t.dtype)
            return energies
        # CPU: each net runs on its own atoms only, in batches of at most ``fit_batch`` atoms. The
        # atoms are ordered by type once and T [N, M, 4] is gathered and split, rather than D
        # [N, M * axis_neuron] (4x larger for axis_neuron 16): the backward's scatter and
        # concatenation then move T-sized tensors. Batches keep every intermediate small: each
        # D batch is used and freed before the next is made (lower peak memory), and blocks below
        # glibc's mmap threshold (32 MB) are reused instead of being mapped and faulted in anew.
        order = torch.argsort(types, stable=True)
        counts: List[int] = torch.bincount(types, minlength=self.ntypes).tolist()
        sizes: List[int] = []  # batch sizes, type after type
        batches: List[int] = []  # number of batches of each type
        for count in counts:
            sizes += [self.fit_batch] * (count // self.fit_batch)
            if count % self.fit_batch > 0:
                sizes.append(count % self.fit_batch)
            batches.append((count + self.fit_batch - 1) // self.fit_batch)
        blocks = torch.split(t.index_select(0, order), sizes)
        fitted: List[torch.Tensor] = []
        for k, net in enumerate(self.fittings):
            for _ in range(batches[k]):
                fitted.append(net(self.descriptor(blocks[len(fitted)])).squeeze(1))
        if len(fitted) == 0:  # no atoms
            return energies
        return energies.index_add(0, order, torch.cat(fitted))

    def check_sel(self, num_atoms: int, types: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor,
                  valid: torch.Tensor, num_pairs: torch.Tensor, capacity: int, on_cpu: bool) -> torch.Tensor:
        """Detects more neighbours than ``sel``: RuntimeError on the CPU, recorded in ``overflow_flags`` elsewhere.

        Returns counts [N, ntypes]: each atom's neighbours of each type within rcut.
        """
        counts = torch.zeros(num_atoms * self.ntypes, dtype=torch.long, device=center.device)
        counts = counts.index_add(0, center * self.ntypes + types.index_select(0, neighbor), valid.to(torch.long))
        counts = counts.view(num_atoms, self.ntypes)
        self.check_neighbor_counts(counts, num_pairs, capacity, on_cpu)
        return counts

    def check_neighbor_counts(self, counts: torch.Tensor, num_pairs: torch.Tensor, capacity: int, on_cpu: bool) -> None:
        """counts [N, ntypes] neighbours of each type per atom: the sel check of :meth:`check_sel`."""
        excess = counts > self.sel_tensor.unsqueeze(0)
        if on_cpu:
            if int(num_pairs[0]) > capacity:
                raise RuntimeError("SeE2A: " + str(int(num_pairs[0])) + " neighbour pairs within rcut exceed the capacity "
                                   + str(capacity) + " = N * sum(sel); increase sel " + str(self.sel))
            if bool(excess.any()):
                atom_and_type = torch.nonzero(excess)[0]
                atom = int(atom_and_type[0])
                t = int(atom_and_type[1])
                raise RuntimeError("SeE2A: atom " + str(atom) + " has " + str(int(counts[atom, t])) + " neighbours of type "
                                   + self.type_map[t] + " within rcut " + str(self.rcut) + " but sel[" + str(t) + "] = "
                                   + str(self.sel[t]) + "; increase sel")
        else:  # no host read here: the next check reports it
            checks.record_pairs(self.overflow_flags, num_pairs, capacity)
            checks.record_sel(self.overflow_flags, counts, self.sel_tensor)


def contract_by_center(g: torch.Tensor, r: torch.Tensor, center: torch.Tensor, num_atoms: int) -> torch.Tensor:
    """T_i = sum over the edges e of atom i of g_e (x) r_e: g [E, M], r [E, 4], center [E] -> [num_atoms, M, 4].

    One batched product over a padded [num_atoms, K] layout of each atom's edges (K: the most
    edges of any atom; empty slots read a zero row), as DeePMD lays out neighbours: on the CPU
    this is ~4x faster, forward and double backward, than forming every edge's [M, 4] outer
    product and scattering it, which training (double backward) pays on every step.
    """
    num_edges = g.shape[0]
    counts = torch.bincount(center, minlength=num_atoms)
    width = int(counts.max()) if num_edges > 0 else 0
    order = torch.argsort(center, stable=True)
    start = torch.cumsum(counts, 0) - counts
    slot = torch.arange(width, device=g.device).unsqueeze(0)
    sorted_position = (start.unsqueeze(1) + slot).clamp(max=max(num_edges - 1, 0))
    edge = order.index_select(0, sorted_position.flatten()).view(num_atoms, width)
    index = torch.where(slot < counts.unsqueeze(1), edge, torch.full_like(edge, num_edges)).flatten()
    g_padded = torch.cat([g, g.new_zeros(1, g.shape[1])]).index_select(0, index).view(num_atoms, width, g.shape[1])
    r_padded = torch.cat([r, r.new_zeros(1, 4)]).index_select(0, index).view(num_atoms, width, 4)
    return torch.bmm(g_padded.transpose(1, 2), r_padded)
