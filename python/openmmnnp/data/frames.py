"""The frame file format: one ``.npz`` file of labelled configurations in OpenMM units.

Arrays (F frames of the same N atoms):

    positions    [F, N, 3] float32   nm
    box          [F, 3, 3] float32   nm, rows = box vectors (OpenMM reduced form); all zeros: no box
    energy       [F]       float64   kJ/mol, total potential energy
    forces       [F, N, 3] float32   kJ/mol/nm
    types        [N]       int64     index into type_map
    type_map     [T]       str       element symbols
    temperature  [F]       float32   K, thermostat temperature the frame was sampled at

Models use their own units (e.g. angstrom, eV); conversion goes through openmmnnp.units.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from typing import List

import numpy as np

from openmmnnp.atomic_write import atomic_path


@dataclasses.dataclass
class Frames:
    positions: np.ndarray
    box: np.ndarray
    energy: np.ndarray
    forces: np.ndarray
    types: np.ndarray
    type_map: List[str]
    temperature: np.ndarray

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def validate(self) -> None:
        """Raises ValueError if the arrays are inconsistent."""
        f, n = self.positions.shape[:2]
        expected = {"positions": (f, n, 3), "box": (f, 3, 3), "energy": (f,), "forces": (f, n, 3),
                    "types": (n,), "temperature": (f,)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"frames: {name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.types.size and (self.types.min() < 0 or self.types.max() >= len(self.type_map)):
            raise ValueError(f"frames: types must index type_map {self.type_map}")
        for name in ("positions", "box", "energy", "forces"):
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"frames: {name} holds NaN or infinite values")


def save_frames(path: str | os.PathLike, frames: Frames) -> None:
    """Writes ``frames`` to ``path`` (.npz) atomically: a failed write leaves the previous file."""
    frames.validate()
    with atomic_path(path) as temporary, open(temporary, "wb") as f:  # a file object: numpy adds no ".npz"
        np.savez_compressed(
            f,
            positions=frames.positions.astype(np.float32), box=frames.box.astype(np.float32),
            energy=frames.energy.astype(np.float64), forces=frames.forces.astype(np.float32),
            types=frames.types.astype(np.int64), type_map=np.array(frames.type_map),
            temperature=frames.temperature.astype(np.float32),
        )


def load_frames(path: str | os.PathLike) -> Frames:
    """Reads a frame file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        IsADirectoryError: ``path`` is a folder.
        ValueError: ``path`` is not a (complete, consistent) frame file; the message says why.
    """
    if os.path.isdir(path):
        raise IsADirectoryError(f"frame file {str(path)!r} is a folder, not a file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"frame file {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{str(path)!r} is not an openmm-nnp frame file (not a .npz archive)")
    try:
        with np.load(path) as data:
            missing = {"positions", "box", "energy", "forces", "types", "type_map", "temperature"} - set(data.files)
            if missing:
                raise ValueError(f"missing {sorted(missing)}")
            frames = Frames(data["positions"], data["box"], data["energy"], data["forces"], data["types"],
                            [str(s) for s in data["type_map"]], data["temperature"])
            frames.validate()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, AttributeError) as error:
        # np.load raises all of these for files that are not (whole) .npz archives
        raise ValueError(f"{str(path)!r} is not an openmm-nnp frame file ({error})") from error
    if len(frames) == 0:
        raise ValueError(f"{str(path)!r} holds no frames")
    return frames


def concatenate(parts: List[Frames]) -> Frames:
    """Frames of several files of the same atoms, in order."""
    first = parts[0]
    for p in parts[1:]:
        if p.type_map != first.type_map or not np.array_equal(p.types, first.types):
            raise ValueError("frames: cannot concatenate files with different atoms")
    return Frames(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("positions", "box", "energy", "forces")),
                  first.types, list(first.type_map), np.concatenate([p.temperature for p in parts]))
