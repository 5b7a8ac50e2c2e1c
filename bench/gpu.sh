#!/usr/bin/env bash
# The GPU checks in one run (docs/benchmarks.md, docs/quality_gpu.md): the training-step benchmark at
# 256 px and width 64 (fp32, bf16, bf16 + channels_last), then the quality benchmark at full
# ADN width (64, 4 residual blocks) on 128 px native-resolution patches of the 256 px, 1.5 mm
# slices, bf16, lr 1e-4 (2e-4 diverged at this width on 2026-12-04), the four variants side by
# side on the one GPU. STEPS is sized from the measured bf16 rate so that training fits TRAIN_S
# seconds (default 240); QUALITY_S (default 600) caps the whole quality benchmark.
#
#   CARRY=.carry/dataset.tar [OUT=runs/quality_gpu] [TRAIN_S=240] [RESULTS=dir] bench/gpu.sh
#   DATA=runs/quality/cache/<key> ... bench/gpu.sh
#
# CARRY is a dataset packed by `bench/carry_dataset.py pack` on a machine that ran `make
# quality` (a GPU box may lack SimpleITK and xraydb, which synthesis and ingestion need); DATA
# an ingested dataset already there. Writes OUT/train_step.txt and the quality benchmark's
# OUT/summary.json, quality.md and curves.png; with RESULTS, also RESULTS/results.tar.gz (those,
# the evaluation report, each run's metrics.jsonl, config.json and samples.png), even when the
# benchmark ran out of time. STEP_BENCH=0 skips the step benchmark (then set STEPS); WIDTH,
# NUM_RES, PATCH, LR, PARALLEL, WORKERS, DEVICE and AMP override the settings above.
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python3}
OUT=${OUT:-runs/quality_gpu}
TRAIN_S=${TRAIN_S:-240}
mkdir -p "$OUT"

collect_results() {
  [ -n "${RESULTS:-}" ] || return 0
  mkdir -p "$RESULTS"
  (cd "$OUT" && {
    find . -maxdepth 1 -type f \( -name '*.txt' -o -name '*.json' -o -name '*.md' -o -name '*.png' \
      -o -name '*.log' \)
    find report -type f
    find runs -type f \( -name metrics.jsonl -o -name config.json -o -name samples.png \)
  } 2>/dev/null) | tar czf "$RESULTS/results.tar.gz" -C "$OUT" -T -
}
trap collect_results EXIT

if [ -n "${CARRY:-}" ]; then
  mkdir -p runs/quality/cache
  DATA=$("$PY" bench/carry_dataset.py unpack "$CARRY" runs/quality/cache)
  echo "unpacked $CARRY -> $DATA"
fi
if [ "${DEVICE:-cuda}" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
fi
if [ "${STEP_BENCH:-1}" = 1 ]; then
  timeout 150 "$PY" bench/train_step.py --steps 10 | tee "$OUT/train_step.txt" || true
  # per-variant step time at 128 px: a quarter of the 256 px work, at 1.5x the cost per pixel
  # (smaller kernels run less efficiently), four variants sharing the GPU; plus ~0.15 s per
  # step of per-epoch validation and sample grids (about 10 steps per epoch on this dataset).
  # On 2026-12-04 (H200) this came out 17 % short: 736 steps took 258 s for TRAIN_S=220.
  rate=$(awk '/bf16 autocast/ {print $3}' "$OUT/train_step.txt")
  rate=${rate:-20}  # no measurement: assume a slow GPU
  STEPS=$("$PY" -c "print(max(200, min(8000, int($TRAIN_S / (4 / $rate * 0.25 * 1.5 * 4 + 0.15)))))")
  echo "bf16 rate at 256 px: $rate slices/s -> STEPS=$STEPS per variant" | tee -a "$OUT/gpu.txt"
fi
export OUT DATA STEPS DEVICE=${DEVICE:-cuda} AMP=${AMP:-1} WIDTH=${WIDTH:-64}
export NUM_RES=${NUM_RES:-4} PATCH=${PATCH:-128} LR=${LR:-0.0001} PARALLEL=${PARALLEL:-4}
export WORKERS=${WORKERS:-8}
set -o pipefail
timeout "${QUALITY_S:-600}" "$PY" bench/quality.py 2>&1 | tee "$OUT/quality.log"
