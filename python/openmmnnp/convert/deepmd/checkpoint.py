"""Reads a DeePMD-kit PyTorch training checkpoint (``.pt``) without DeePMD-kit."""

from __future__ import annotations

import pickle
from typing import Any, Dict, Tuple

import torch


def read_checkpoint(path: str) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """(model definition dict, {name: tensor}) of the single-task model in a training checkpoint."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError, pickle.UnpicklingError) as error:
        raise ValueError(f"cannot read {path!r} as a DeePMD-kit PyTorch checkpoint ({error})") from error
    state = saved.get("model") if isinstance(saved, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path!r} is not a DeePMD-kit PyTorch checkpoint (no 'model' state dict)")
    heads = sorted({key.split(".")[1] for key in state if key.startswith("model.")})
    if len(heads) != 1:
        raise ValueError(f"{path!r} holds a multi-task model (heads {heads}); freeze one head with dp --pt freeze --head")
    extra = state.get("_extra_state")
    params = extra.get("model_params") if isinstance(extra, dict) else None
    if not isinstance(params, dict):
        raise ValueError(f"{path!r} has no model_params in its _extra_state: not a DeePMD-kit PyTorch checkpoint")
    prefix = f"model.{heads[0]}."
    tensors = {key[len(prefix):]: value for key, value in state.items()
               if key.startswith(prefix) and isinstance(value, torch.Tensor)}
    return params, tensors

