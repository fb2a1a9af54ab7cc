"""Reads DeePMD-kit's backend-neutral ``.dp`` model file (HDF5, from ``dp convert-backend``).

The file holds the serialized model as JSON (attribute ``json``) whose arrays are names of
HDF5 datasets. The arrays are renamed to the PyTorch backend's state-dict names so that one
mapping (openmmnnp.convert.deepmd.mapping) serves all formats.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Tuple

import torch

from openmmnnp.convert.deepmd.mapping import DESCRIPTOR, FITTING

_LAYER_NAMES = {"w": "matrix", "b": "bias", "idt": "idt"}


def _layers(networks: Any, prefix: str, load: Any, out: Dict[str, torch.Tensor]) -> None:
    for k, network in enumerate(networks):
        for l, layer in enumerate(network["layers"]):
            for name, ref in layer["@variables"].items():
                if ref is not None and name in _LAYER_NAMES:
                    out[f"{prefix}filter_layers.networks.{k}.layers.{l}.{_LAYER_NAMES[name]}"] = load(ref)


def read_dp(path: str) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """(model definition dict, {PyTorch-backend name: tensor}) of a ``.dp`` model file."""
    try:
        import h5py
    except ImportError as error:
        raise ValueError("convert-deepmd: reading .dp files needs h5py (pip install h5py)") from error
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"convert-deepmd: cannot read {path!r} as a DeePMD-kit .dp (HDF5) file ({error})") from error
    with handle:
        if "json" not in handle.attrs:
            raise ValueError(f"convert-deepmd: {path!r} has no 'json' attribute: not a DeePMD-kit .dp file")
        saved = json.loads(handle.attrs["json"])

        def load(ref: str) -> torch.Tensor:
            return torch.as_tensor(handle[ref][()])

        model = saved.get("model", {})
        params = saved.get("model_def_script")
        if not isinstance(params, dict) or "descriptor" not in model or "fitting" not in model:
            raise ValueError(f"convert-deepmd: {path!r} is not a DeePMD-kit standard model (no model_def_script, "
                             "descriptor or fitting)")
        tensors: Dict[str, torch.Tensor] = {}
        descriptor, fitting = model["descriptor"], model["fitting"]
        if descriptor.get("type") in ("se_e2_a", "se_a"):
            _layers(descriptor["embeddings"]["networks"], DESCRIPTOR, load, tensors)
            tensors[DESCRIPTOR + "mean"] = load(descriptor["@variables"]["davg"])
            tensors[DESCRIPTOR + "stddev"] = load(descriptor["@variables"]["dstd"])
        if "nets" in fitting:
            _layers(fitting["nets"]["networks"], FITTING, load, tensors)
        if fitting.get("@variables", {}).get("bias_atom_e") is not None:
            tensors[FITTING + "bias_atom_e"] = load(fitting["@variables"]["bias_atom_e"])
        if model.get("@variables", {}).get("out_bias") is not None:
            tensors["atomic_model.out_bias"] = load(model["@variables"]["out_bias"])
        if saved.get("@variables", {}).get("min_nbor_dist") is not None:
            tensors["min_nbor_dist"] = load(saved["@variables"]["min_nbor_dist"])
    return params, tensors
