#!/usr/bin/env bash
# GPU benchmark: run on a machine with a CUDA GPU and jax[cuda] already
# installed (installs nothing). Takes under 5 minutes on an H100/H200-class GPU.
# Writes benchmarks/ensemble_gpu*.{json,md} and benchmarks/scale_gpu.json, and
# copies them to $OUT when that is set (the device tool's output folder).
#
#   bash scripts/gpu_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee benchmarks_gpu_info.txt || true
python -c "import jax; print(jax.devices()); assert jax.default_backend() == 'gpu', 'no GPU backend'"
mkdir -p benchmarks
# Example 19 at 1e6, 1e7, 1e8 particles (target: >= 1e11 particle-steps/s at 1e8 on an H200)
timeout 150 python scripts/bench_ensemble.py --problems ex19 --sizes 1000000 10000000 100000000 \
  --steps 200 --repeats 3 --vbt-max 1000000 --numpy-max-work 0 --out benchmarks/gpu_ex19
timeout 90 python scripts/bench_ensemble.py --problems ou64 statedep --sizes 1000000 10000000 \
  --steps 100 --repeats 3 --vbt-max 0 --numpy-max-work 0 --out benchmarks/gpu_other
# which random-number generator pays on this GPU (sdesim's stream vs jax.random impls)
timeout 60 python scripts/bench_prng.py --sizes 10000000 100000000 --noise-dims 2 --steps 50 \
  --out benchmarks/gpu_prng || true
if [ -n "${OUT:-}" ]; then
  cp benchmarks/gpu_prng/*.json "$OUT/prng.json" 2>/dev/null || true
  cp benchmarks/gpu_ex19/*.json "$OUT/ex19.json"; cp benchmarks/gpu_ex19/*.md "$OUT/ex19.md"
  cp benchmarks/gpu_other/*.json "$OUT/other.json"; cp benchmarks/gpu_other/*.md "$OUT/other.md"
  cp benchmarks_gpu_info.txt "$OUT/gpu_info.txt"
fi
