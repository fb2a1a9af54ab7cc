#!/usr/bin/env bash
# Retrains the shipped water models from nothing (docs/models.md, "How the water models are made"):
#   1. concurrent learning of an se_e2_a ensemble against flexible TIP3P (openmm-nnp learn): teacher MD
#      at 280-400 K, then rounds of ensemble training, NNP-driven exploration (NVT 300-420 K, NPT 300 K)
#      and teacher labels of the frames the ensemble disagrees on (inside the teacher's domain);
#   2. the final se_e2_a (continuing ensemble member 0) and an SE3Attention model, side by side on all
#      the data, one process each;
#   3. compression of the se_e2_a model (openmm-nnp compress).
# About 90 minutes on 2 CPU cores. Usage: bash scripts/train-water-models.sh [OUTPUT_DIR] (default runs/water-models)
# The results are not copied into the package; the last lines print the commands that ship them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/bootstrap.sh"
out="${1:-runs/water-models}"
nnp="$root/.venv/bin/openmm-nnp"
if [ -e "$out" ]; then
  echo "train-water-models: $out exists; give a new folder (nothing of an earlier run is overwritten)" >&2
  exit 2
fi
export OMP_NUM_THREADS=1 OPENMM_CPU_THREADS=1
start=$(date +%s)
se_e2_a=(--neuron 16 32 64 --fitting 128 128 128 --axis-neuron 8)
se3=(--model se3 --rcut 4.0 --se3-lmax 1 --se3-channels 16 --se3-max-neighbors 64)

"$nnp" learn --output-dir "$out/learn" "${se_e2_a[@]}" --start-lr 1e-3 --stop-lr 1e-4 --seed 1 \
  --initial-temperatures 280 300 330 360 400 --initial-frames-per-temperature 60 --initial-equilibration 2000 \
  --ensemble 4 --rounds 3 --first-steps 3000 --round-steps 1500 --round-start-lr 7e-4 --final-steps 0 \
  --explore-temperatures 300 330 360 420 --explore-npt-temperatures 300 --explore-steps 2000 --explore-interval 10 \
  --trust-lo 400 --trust-hi 3000 --max-select 150 --jobs 2

data=("$out"/learn/data/*.npz)
last_round=$(ls -d "$out"/learn/round-* | tail -n 1)
echo "[train-water-models] final trainings on ${#data[@]} frame files, side by side (SE3 log: $out/se3.log)"
"$nnp" train "${data[@]}" --output-dir "$out/se3" "${se3[@]}" --steps 7000 --start-lr 2e-3 --stop-lr 2e-5 \
  --threads 1 --seed 2 > "$out/se3.log" 2>&1 &
se3_pid=$!
"$nnp" train "${data[@]}" --output-dir "$out/se_e2_a" "${se_e2_a[@]}" --init-model "$last_round/model-0/model.pt" \
  --steps 13000 --start-lr 1e-3 --stop-lr 1e-5 --threads 1 --seed 1
wait "$se3_pid" || { echo "train-water-models: the SE3 training failed, see $out/se3.log" >&2; exit 1; }
"$nnp" compress -i "$out/se_e2_a/model.pt" -o "$out/se_e2_a-compressed.pt"

minutes=$(( ($(date +%s) - start) / 60 ))
echo "[train-water-models] done in $minutes min. To ship these models:"
echo "  cp $out/se_e2_a/model.pt python/openmmnnp/pretrained/water-se_e2_a.pt"
echo "  cp $out/se_e2_a-compressed.pt python/openmmnnp/pretrained/water-se_e2_a-compressed.pt"
echo "  cp $out/se3/model.pt python/openmmnnp/pretrained/water-se3.pt"
