"""Reads a frozen DeePMD-kit PyTorch model (``.pth``, a TorchScript archive) without DeePMD-kit.

``torch.jit.load`` needs DeePMD's custom ops, so the archive's ``data.pkl`` is unpickled here
with stand-ins for the scripted classes: only the stored tensors and the JSON model definition
(``model_def_script``) are needed.
"""

from __future__ import annotations

import pickle
import zipfile
from typing import Any, Dict, Tuple

import torch
import torch.jit._pickle  # the helpers TorchScript archives reference (build_intlist, ...)


class _ScriptObject:
    """Stand-in for a scripted module: keeps the attributes the pickle sets."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, root: str, handle: Any) -> None:
        super().__init__(handle)
        self.archive = archive
        self.root = root

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return _ScriptObject
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_parameter"):
            return getattr(torch._utils, name)
        if module == "torch" and name.endswith("Storage"):
            return getattr(torch, name)
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        if module == "torch.jit._pickle":
            return getattr(torch.jit._pickle, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in the TorchScript archive")

    def persistent_load(self, pid: Any) -> Any:
        kind, storage_type, key, _location, numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        data = self.archive.read(f"{self.root}/data/{key}")
        dtype = storage_type.dtype if hasattr(storage_type, "dtype") else storage_type(0).dtype
        untyped = torch.UntypedStorage.from_buffer(data, dtype=torch.uint8) if data else torch.UntypedStorage(0)
        return torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)


def _flatten(obj: Any, prefix: str, out: Dict[str, Any]) -> None:
    """Module tree -> {"a.b.name": value} for tensors and scalar/string attributes."""
    state = obj.state if isinstance(obj, _ScriptObject) else obj
    if not isinstance(state, dict):
        return
    for name, value in state.items():
        key = prefix + str(name)
        if isinstance(value, (_ScriptObject, dict)):
            _flatten(value, key + ".", out)
        else:
            out[key] = value


def read_frozen(path: str) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """(model definition dict, {name: tensor}) of a frozen DeePMD-kit ``.pth`` model."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path!r} is not a frozen DeePMD-kit PyTorch model (not a TorchScript archive)") from error
    with archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path!r} is not a TorchScript archive (expected one data.pkl, found {pickles})")
        root = pickles[0].rsplit("/", 1)[0]
        with archive.open(pickles[0]) as handle:
            model = _ArchiveUnpickler(archive, root, handle).load()
    flat: Dict[str, Any] = {}
    _flatten(model, "", flat)
    script = flat.get("model_def_script")
    if not isinstance(script, str):
        raise ValueError(f"{path!r} has no model_def_script: not a DeePMD-kit PyTorch model")
    import json
    tensors = {k: v for k, v in flat.items() if isinstance(v, torch.Tensor)}
    return json.loads(script), tensors
