#!/usr/bin/env bash
# Builds openmm-nnp's wheel as `pip install .` would, installs it into a clean virtual environment
# and runs the command line and one MD step from it: what a user of a normal (not editable) install
# gets. The editable install of scripts/test.sh cannot see files missing from the wheel.
#
# The clean environment gets openmm-nnp from the wheel only (--no-deps); its dependencies (torch,
# OpenMM, openmm-torch, ...) come from ./.venv through a path file, so nothing is downloaded. A path
# file only adds the folder to sys.path: the editable install's own .pth hooks there do not run,
# and the script checks that `openmmnnp` and its op library are imported from the wheel.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/bootstrap.sh"
start=$SECONDS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python="$root/.venv/bin/python"

echo "[check-wheel] building the wheel (CPU kernels only, portable: -DOPENMMNNP_CUDA=OFF -DOPENMMNNP_NATIVE=OFF)"
# Its own build folder, kept between runs (build/ is ignored): only changed sources recompile.
"$python" -m pip wheel --disable-pip-version-check -q --no-build-isolation --no-deps -w "$work/dist" "$root" \
  -Ccmake.define.OPENMMNNP_CUDA=OFF -Ccmake.define.OPENMMNNP_NATIVE=OFF -Cbuild-dir="$root/build/wheel-check" \
  2>&1 | { grep -v "^WARNING: Location '" || true; }
wheel=("$work"/dist/openmm_nnp-*.whl)
"$python" - "${wheel[0]}" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = ["openmmnnp/data/frames.py", "openmmnnp/data/water.py", "openmmnnp/lib/libopenmmnnp_ops.so",
          "openmmnnp/pretrained/water-se_e2_a-compressed.pt"]
missing = [name for name in needed if name not in names]
if missing:
    sys.exit(f"[check-wheel] the wheel lacks {missing}")
EOF

"$python" -m venv --without-pip "$work/venv"  # ./.venv's pip installs into it (pip --python)
"$python" -m pip --python "$work/venv/bin/python" --disable-pip-version-check -q install --no-deps "${wheel[0]}" \
  2>&1 | { grep -v "^WARNING: Location '" || true; }
deps="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$deps" > "$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/openmmnnp-check-deps.pth"

cd "$work"  # away from the sources
export OPENMM_CPU_THREADS=1
"$work/venv/bin/openmm-nnp" --help > /dev/null
"$work/venv/bin/openmm-nnp" data water --help > /dev/null
"$work/venv/bin/openmm-nnp" convert-deepmd -i "$root/tests/convert/deepmd/se_e2_a_two_side.pth" -o "$work/imported.pt"
"$work/venv/bin/openmm-nnp" compress -i "$work/imported.pt" -o "$work/imported-compressed.pt"
"$work/venv/bin/python" - "$work" <<'EOF'
import sys
from pathlib import Path

import openmm
import torch
from openmm import unit
from openmmtools.testsystems import WaterBox

import openmmnnp
from openmmnnp import NNPForce, pretrained_path
from openmmnnp._library import load_library

work = Path(sys.argv[1]).resolve()
for what, path in (("openmmnnp", openmmnnp.__file__), ("the op library", load_library())):
    if not Path(path).resolve().is_relative_to(work / "venv"):
        sys.exit(f"[check-wheel] {what} was imported from {path}, not from the wheel")
torch.set_num_threads(1)
water = WaterBox(box_edge=1.3 * unit.nanometer, cutoff=0.6 * unit.nanometer, constrained=False)
system = openmm.System()
for atom in water.topology.atoms():
    system.addParticle(atom.element.mass)
system.setDefaultPeriodicBoxVectors(*water.topology.getPeriodicBoxVectors())
system.addForce(NNPForce(pretrained_path("water-se_e2_a-compressed"), water.topology))
integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtosecond)
context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
context.setPositions(water.positions)
integrator.step(1)
energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
if not abs(energy) < float("inf"):
    sys.exit(f"[check-wheel] one MD step gave the energy {energy}")
print(f"[check-wheel] one MD step from the wheel: {system.getNumParticles()} atoms, energy {energy:.1f} kJ/mol")
EOF
echo "[check-wheel] the wheel installs and runs ($((SECONDS - start)) s)"
