"""Where ``MLPotential("openmmnnp", modelPath=...)`` finds its TorchScript model.

``modelPath`` is one of:

* an openmm-nnp TorchScript model file (``openmm-nnp train`` / ``compress`` / ``convert-deepmd``);
* the name of a shipped model (:func:`openmmnnp.pretrained.available_models`);
* a DeePMD-kit se_e2_a model file: frozen ``.pth``, training checkpoint ``.pt`` or ``.dp``,
  imported with :func:`openmmnnp.convert.deepmd.convert_deepmd`.

With ``compress=True`` the model is tabulated by :func:`openmmnnp.compression.compress` with the
``openmm-nnp compress`` defaults. An imported or compressed model is written once to a cache folder,
keyed on the input file's content (SHA-256) and the options, so later runs (and every MPI rank)
load the same file instead of converting again; the file is written atomically, so ranks that
race each write a complete file and the last rename wins.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Union

import torch

from openmmnnp import __version__
from openmmnnp.atomic_write import atomic_path
from openmmnnp.pretrained import available_models, pretrained_path

PathLike = Union[str, os.PathLike]

DEEPMD_SUFFIXES = (".pth", ".pt", ".dp")
# The compress defaults (openmm-nnp compress: -s 0.01 -e 5 -f -1); part of the cache key.
COMPRESS_STRIDE = 0.01
COMPRESS_EXTRAPOLATE = 5.0
# Bump when the conversion or compression output changes for the same input.
CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``$OPENMMNNP_CACHE_DIR``, else ``$XDG_CACHE_HOME/openmm-nnp``, else ``~/.cache/openmm-nnp``."""
    explicit = os.environ.get("OPENMMNNP_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "openmm-nnp"


def is_torchscript_archive(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (``torch.jit.save``: it holds ``code/``), not a ``torch.save`` file."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _locate(model_path: PathLike) -> Path:
    """The file ``model_path`` names: an existing file, or a shipped model's file."""
    if not isinstance(model_path, (str, os.PathLike)):
        raise TypeError(f"MLPotential('openmmnnp'): modelPath must be a file path or a shipped model name, "
                        f"got {type(model_path).__name__}")
    path = Path(model_path)
    if path.is_file():
        return path
    text = os.fspath(model_path)
    looks_like_name = text != "" and os.sep not in text and "/" not in text and path.suffix.lower() not in DEEPMD_SUFFIXES
    if looks_like_name:
        try:
            return pretrained_path(text)
        except ValueError:
            pass
    raise ValueError(f"MLPotential('openmmnnp'): modelPath {text!r} is neither an existing model file nor a shipped "
                     f"model; shipped models: {available_models()}")


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_key(digest: str, kind: str, compress: bool) -> str:
    options = f"{kind}|compress={compress}|stride={COMPRESS_STRIDE}|extrapolate={COMPRESS_EXTRAPOLATE}" \
              f"|format={CACHE_FORMAT}|openmmnnp={__version__}|torch={torch.__version__}"
    return hashlib.sha256(f"{digest}|{options}".encode()).hexdigest()[:24]


def _build(source: Path, kind: str, compress: bool) -> torch.jit.ScriptModule:
    """The TorchScript module for ``source``: DeePMD import and/or compression."""
    from openmmnnp.compression import compress as compress_model
    from openmmnnp.convert.deepmd import convert_deepmd

    if kind == "deepmd":
        try:
            model = convert_deepmd(str(source))
        except ValueError as error:
            raise ValueError(f"MLPotential('openmmnnp'): cannot import {str(source)!r} as a DeePMD-kit model: {error}") from error
    else:
        try:
            model = torch.jit.load(str(source), map_location="cpu")
        except Exception as error:  # torch raises RuntimeError or its own subclasses for a damaged archive
            raise ValueError(f"MLPotential('openmmnnp'): {str(source)!r} is not a readable TorchScript model ({error})") from error
    if compress:
        try:
            model = compress_model(model, COMPRESS_STRIDE, COMPRESS_EXTRAPOLATE)
        except ValueError as error:
            raise ValueError(f"MLPotential('openmmnnp'): compress=True, but {str(source)!r} cannot be compressed: {error}. "
                             "Only uncompressed se_e2_a models with a min_neighbor_distance are compressible; "
                             "pass compress=False to use the model as it is") from error
    return model if isinstance(model, torch.jit.ScriptModule) else torch.jit.script(model)


def resolve_model(model_path: PathLike, compress: bool = False, cache_dir: PathLike | None = None) -> Path:
    """The TorchScript file to give NNPForce for ``model_path`` (see the module docstring).

    Args:
        model_path: an openmm-nnp TorchScript file, a shipped model name or a DeePMD-kit file.
        compress: tabulate the model (se_e2_a only) with the ``openmm-nnp compress`` defaults.
        cache_dir: folder for imported/compressed models (created if missing); default
            :func:`default_cache_dir`. Pass the input's own folder to keep the result next to it.

    Raises:
        ValueError: an unknown name (the message lists the shipped models), a file that is not a
            model, or ``compress=True`` on a model that cannot be compressed.
    """
    if not isinstance(compress, bool):
        raise TypeError(f"MLPotential('openmmnnp'): compress must be True or False, got {compress!r}")
    source = _locate(model_path)
    suffix = source.suffix.lower()
    kind = "torchscript" if is_torchscript_archive(source) and suffix != ".pth" else "deepmd"
    if kind == "deepmd" and suffix not in DEEPMD_SUFFIXES:
        raise ValueError(f"MLPotential('openmmnnp'): {str(source)!r} is not a TorchScript model file, and its "
                         f"suffix {suffix!r} is not one of a DeePMD-kit model {list(DEEPMD_SUFFIXES)}")
    if kind == "torchscript" and not compress:
        return source
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = folder / f"{source.stem}-{'compressed' if compress else 'imported'}-{_cache_key(_file_digest(source), kind, compress)}.pt"
    if cached.is_file() and is_torchscript_archive(cached):  # anything else (a damaged disk) is rebuilt
        return cached
    module = _build(source, kind, compress)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as temporary:
        module.save(str(temporary))
    return cached
