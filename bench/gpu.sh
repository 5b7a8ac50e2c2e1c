#!/usr/bin/env bash
# The GPU checks in one run (docs/benchmarks.md, docs/quality_gpu.md): the training-step benchmark at
# 256 px and width 64 (fp32, bf16, bf16 + channels_last), then the quality benchmark at full
# ADN width (64, 4 residual blocks) on 128 px native-resolution patches of the 256 px, 1.5 mm
# slices, bf16, the four variants side by side on the one GPU. STEPS is sized from the measured
# bf16 rate so that training fits TRAIN_S seconds (default 240).
#
#   DATA=runs/quality/cache/<key> [OUT=runs/quality_gpu] [TRAIN_S=240] bench/gpu.sh
#
# DATA is a dataset ingested by `make quality` on another machine (a GPU box may lack SimpleITK
# and xraydb, which synthesis and ingestion need). Writes OUT/train_step.txt and the quality
# benchmark's OUT/summary.json, quality.md and curves.png.
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python3}
OUT=${OUT:-runs/quality_gpu}
TRAIN_S=${TRAIN_S:-240}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 150 "$PY" bench/train_step.py --steps 10 | tee "$OUT/train_step.txt" || true
# per-variant step time at 128 px: a quarter of the 256 px work, at 1.5x the cost per pixel
# (smaller kernels run less efficiently), four variants sharing the GPU; plus ~0.15 s per step
# of per-epoch validation and sample grids (about 10 steps per epoch on this dataset).
rate=$(awk '/bf16 autocast/ {print $3}' "$OUT/train_step.txt")
rate=${rate:-20}  # no measurement: assume a slow GPU
STEPS=$("$PY" -c "print(max(200, min(4000, int($TRAIN_S / (4 / $rate * 0.25 * 1.5 * 4 + 0.15)))))")
echo "bf16 rate at 256 px: $rate slices/s -> STEPS=$STEPS per variant" | tee -a "$OUT/gpu.txt"
export OUT STEPS DEVICE=cuda AMP=1 WIDTH=64 NUM_RES=4 PATCH=128 PARALLEL=4 WORKERS=8
"$PY" bench/quality.py
