#!/usr/bin/env bash
# The evaluation in docs/evaluation.md, end to end on CPU with one command (`make evaluation`):
# synthesize a small implanted/clean hip dataset, ingest it, train every variant for a short
# schedule with the same settings, and run `madn evaluate` (No MAR, LI, NMAR, the four models).
# Settings can be overridden from the environment, e.g. EPOCHS=20 SIZE=128 make evaluation.
set -euo pipefail

OUT=${OUT:-runs/evaluation}
SUBJECTS=${SUBJECTS:-24}
SIZE=${SIZE:-64}
SLICES=${SLICES:-16}
EPOCHS=${EPOCHS:-30}
WIDTH=${WIDTH:-16}
NUM_RES=${NUM_RES:-2}
LR=${LR:-2e-4}
WORKERS=${WORKERS:-2}
MADN=${MADN:-madn}

start=$(date +%s)
$MADN synth --out "$OUT/synth" --subjects "$SUBJECTS" --metal-fraction 0.5 --size "$SIZE" \
    --slices "$SLICES" --seed 7 --workers "$WORKERS"
data=$($MADN ingest --manifest "$OUT/synth/manifest.csv" --out "$OUT/cache" --size "$SIZE" \
    --register none --val-fraction 0.2 --test-subjects 8 --workers "$WORKERS" | tail -n 1)
echo "dataset: $data"
models=()
for variant in adn-ct adn-mr multichannel madn; do
    run="$OUT/runs/$variant"
    resume=()
    [[ -f "$run/last.ckpt" ]] && resume=(--resume)
    $MADN train --data "$data" --variant "$variant" --epochs "$EPOCHS" --batch-size 4 \
        --lr "$LR" --base-channels "$WIDTH" --num-res "$NUM_RES" --device cpu --out "$run" \
        "${resume[@]}"
    models+=(--model "$run/last.ckpt")
done
$MADN evaluate --data "$data" "${models[@]}" --out "$OUT/report" --workers "$WORKERS" \
    --device cpu
echo "evaluation finished in $(( $(date +%s) - start )) s; report: $OUT/report/report.md"
