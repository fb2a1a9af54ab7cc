"""DeePMD-kit se_e2_a model definition and tensors -> an openmm-nnp :class:`SeE2A`.

Index conventions of DeePMD's PyTorch backend (checked against DeePMD's own outputs by
tests/convert): layer ``matrix`` is [in, out] (ours: Linear weight [out, in]); with
``type_one_side`` false, embedding net k serves centre type k % ntypes and neighbour type
k // ntypes (ours: centre * ntypes + neighbour); davg/dstd are stored per neighbour slot
[ntypes, sum(sel), 4] but are one row per centre type.
"""

from __future__ import annotations

from typing import Any, Dict, List

import torch

from openmmnnp.models.networks import ResidualTanhNet
from openmmnnp.models.se_e2_a import SeE2A

DESCRIPTOR = "atomic_model.descriptor.sea."
FITTING = "atomic_model.fitting_net."

# Options whose non-default values change the model in ways SeE2A does not reproduce.
_DESCRIPTOR_DEFAULTS = {"exclude_types": [], "env_protection": 0.0, "activation_function": "tanh",
                        "type": "se_e2_a", "use_econf_tebd": False, "type_map": None}
_FITTING_DEFAULTS = {"numb_fparam": 0, "numb_aparam": 0, "activation_function": "tanh", "type": "ener",
                     "dim_case_embd": 0, "atom_ener": [], "layer_name": None, "use_aparam_as_mask": False}
_MODEL_DEFAULTS = {"pair_exclude_types": [], "atom_exclude_types": [], "type": "standard"}


def _check_options(section: str, options: Dict[str, Any], defaults: Dict[str, Any]) -> None:
    for name, default in defaults.items():
        value = options.get(name, default)
        if name == "type" and section == "descriptor" and value in ("se_a", "se_e2_a"):
            continue
        if name == "type_map" or value == default or (value in (None, [], 0, 0.0) and default in (None, [], 0, 0.0)):
            continue
        raise ValueError(f"convert-deepmd: unsupported {section} option {name}={value!r} "
                         f"(only {name}={default!r} is supported)")


def _net(tensors: Dict[str, torch.Tensor], prefix: str, sizes: List[int], linear_output: bool) -> ResidualTanhNet:
    """DeePMD's layers ``{prefix}layers.{l}.matrix/bias/idt`` as a ResidualTanhNet of ``sizes``."""
    net = ResidualTanhNet(sizes, linear_output=linear_output).double()
    steps = []
    for k, layer in enumerate(net.layers):
        matrix = tensors.get(f"{prefix}layers.{k}.matrix")
        if matrix is None or tuple(matrix.shape) != (layer.in_features, layer.out_features):
            raise ValueError(f"convert-deepmd: {prefix}layers.{k}.matrix missing or not "
                             f"[{layer.in_features}, {layer.out_features}]")
        with torch.no_grad():
            layer.weight.copy_(matrix.t())
            bias = tensors.get(f"{prefix}layers.{k}.bias")
            layer.bias.copy_(bias.reshape(-1) if bias is not None else torch.zeros(layer.out_features))
        steps.append(tensors.get(f"{prefix}layers.{k}.idt"))
    if any(step is not None for step in steps):
        timestep = torch.ones(len(steps), max(sizes[1:]), dtype=torch.float64)
        for k, step in enumerate(steps):
            if step is not None:
                timestep[k, : step.numel()] = step.reshape(-1)
        net.timestep = timestep
    return net


def _per_type_rows(stat: torch.Tensor, name: str) -> torch.Tensor:
    """[ntypes, sum(sel), 4] -> [ntypes, 4]; DeePMD's statistics repeat one row over the slots."""
    rows = stat[:, :1, :]
    if not torch.allclose(stat, rows.expand_as(stat), rtol=1e-12, atol=0.0):
        raise ValueError(f"convert-deepmd: descriptor {name} differs between neighbour slots; not supported")
    return rows[:, 0, :].to(torch.float64)


def build_model(params: Dict[str, Any], tensors: Dict[str, torch.Tensor]) -> SeE2A:
    """An eager float64 SeE2A equal to the DeePMD-kit se_e2_a model (params = model_def_script)."""
    descriptor = params.get("descriptor", {})
    fitting = params.get("fitting_net", {})
    kind = descriptor.get("type")
    if kind not in ("se_e2_a", "se_a"):
        raise ValueError(f"convert-deepmd: unsupported descriptor type {kind!r}; only se_e2_a is supported")
    if fitting.get("type", "ener") != "ener":
        raise ValueError(f"convert-deepmd: unsupported fitting_net type {fitting.get('type')!r}; only ener is supported")
    _check_options("model", params, _MODEL_DEFAULTS)
    _check_options("descriptor", descriptor, _DESCRIPTOR_DEFAULTS)
    _check_options("fitting_net", fitting, _FITTING_DEFAULTS)
    type_map = [str(t) for t in params["type_map"]]
    ntypes = len(type_map)
    sel = [int(s) for s in descriptor["sel"]]
    neuron = [int(n) for n in descriptor.get("neuron", [24, 48, 96])]
    hidden = [int(n) for n in fitting.get("neuron", [120, 120, 120])]
    type_one_side = bool(descriptor.get("type_one_side", False))
    model = SeE2A(type_map, float(descriptor["rcut"]), float(descriptor.get("rcut_smth", 0.5)), sel, neuron,
                  int(descriptor.get("axis_neuron", 4)), hidden, type_one_side).double()
    num_nets = ntypes if type_one_side else ntypes * ntypes
    nets = []
    for ours in range(num_nets):
        theirs = ours if type_one_side else (ours % ntypes) * ntypes + ours // ntypes
        nets.append(_net(tensors, f"{DESCRIPTOR}filter_layers.networks.{theirs}.", [1] + neuron, False))
    model.embeddings = torch.nn.ModuleList(nets)
    width = neuron[-1] * model.axis_neuron
    model.fittings = torch.nn.ModuleList(
        [_net(tensors, f"{FITTING}filter_layers.networks.{t}.", [width] + hidden + [1], True) for t in range(ntypes)])
    model.davg = _per_type_rows(tensors[DESCRIPTOR + "mean"], "davg")
    model.dstd = _per_type_rows(tensors[DESCRIPTOR + "stddev"], "dstd")
    bias = torch.zeros(ntypes, dtype=torch.float64)
    if FITTING + "bias_atom_e" in tensors:
        bias = bias + tensors[FITTING + "bias_atom_e"].reshape(ntypes, -1)[:, 0].double()
    if "atomic_model.out_bias" in tensors:
        bias = bias + tensors["atomic_model.out_bias"].reshape(-1, ntypes)[0].double()
    model.energy_bias = bias
    model.empty_slot_term = empty_slot_term(model)
    return model


def empty_slot_term(model: SeE2A) -> torch.Tensor:
    """[ntypes, ntypes, M, 4]: G_ab(s^_pad) (x) R^_pad of an empty DeePMD slot, R^_pad = -davg[a]/dstd[a]."""
    ntypes = model.ntypes
    r_pad = (-model.davg / model.dstd).to(torch.float64)  # [ntypes, 4]
    term = torch.zeros(ntypes, ntypes, model.neuron[-1], 4, dtype=torch.float64)
    with torch.no_grad():
        for a in range(ntypes):
            for b in range(ntypes):
                net = model.embeddings[b if model.type_one_side else a * ntypes + b]
                g = net(r_pad[a, :1].unsqueeze(0))[0]  # [M]
                term[a, b] = g.unsqueeze(1) * r_pad[a].unsqueeze(0)
    return term
