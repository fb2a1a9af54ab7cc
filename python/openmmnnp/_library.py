"""Finds and loads the compiled op library (``libopenmmnnp_ops.so``) into torch.

Loading registers every ``torch.ops.openmmnnp.*`` op, so that TorchScript models
calling them run anywhere ``openmmnnp`` has been imported, including inside
openmm-torch's ``TorchForce``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

_LIBRARY_NAME = "libopenmmnnp_ops.so"
_loaded_path: Path | None = None


def _candidates() -> list[Path]:
    found = []
    if os.environ.get("OPENMMNNP_LIBRARY"):
        found.append(Path(os.environ["OPENMMNNP_LIBRARY"]))
    found.append(Path(__file__).resolve().parent / "lib" / _LIBRARY_NAME)
    # An editable install keeps the Python sources here and the compiled library in site-packages.
    found.extend(Path(p) / "openmmnnp" / "lib" / _LIBRARY_NAME for p in sys.path if p)
    return found


def load_library() -> Path:
    """Load the op library once; returns its path.

    Raises:
        ImportError: the library was not built (the package was installed without its CMake step).
    """
    global _loaded_path
    if _loaded_path is not None:
        return _loaded_path
    for path in _candidates():
        if path.is_file():
            torch.ops.load_library(str(path))
            _loaded_path = path
            return path
    raise ImportError(
        f"openmmnnp: the op library {_LIBRARY_NAME} was not found (looked in: "
        + ", ".join(str(p.parent) for p in _candidates()[:3])
        + "). Install the package with `pip install --no-build-isolation .` so that CMake builds it."
    )


def cuda_ops_available() -> bool:
    """True when the op library was built with its CUDA kernels (every op has them, or none does)."""
    load_library()
    return torch._C._dispatch_has_kernel_for_dispatch_key("openmmnnp::neighbor_pairs", "CUDA")
