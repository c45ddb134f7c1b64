#!/usr/bin/env bash
# Table 1 on one GPU in time-boxed calls: each call trains for at most $TRAIN_S seconds (the sweep resumes
# every interrupted run from its last finished epoch on the next call), then evaluates what finished and
# writes the table. Everything brought back lands under $OUT (default benchmarks/results/gpu-out).
#   bash benchmarks/gpu/table1.sh            # first call, and again to continue (same machine: runs/ is kept)
# Budget of one call (9 minutes): ~40 s data-path benchmark, $TRAIN_S of training, the rest for evaluation,
# the table and the copy.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-benchmarks/results/gpu-out}
TRAIN_S=${TRAIN_S:-390}
PARALLEL=${PARALLEL:-9}
SWEEP=configs/sweeps/sirst_table1_gpu.yaml
PY=${PY:-python}
export PYTHONPATH=$PWD/src
mkdir -p "$OUT/logs"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/logs/gpu.txt" 2>&1
# 1. images/s of the host data path against the device-resident one, same call, same model and recipe
if [ ! -f runs/sweeps/.device_data_bench_done ]; then
  timeout 90 $PY benchmarks/device_data.py --device cuda --model sgem_unet --crop 256 --batch 8 \
    --data ../shared/datasets/SIRST --split-file ../shared/datasets/splits/NUAA-SIRST_50_50/train.txt \
    --epochs 2 > "$OUT/logs/device_data_bench.txt" 2>&1 && mkdir -p runs/sweeps && touch runs/sweeps/.device_data_bench_done
fi
# 2. train (resuming), interrupted cleanly (SIGINT: the last finished epoch is on disk) at the deadline
timeout --signal=INT --kill-after=30 "$TRAIN_S" $PY -m irstd.cli.main sweep "$SWEEP" --parallel "$PARALLEL" \
  --no-progress >> "$OUT/logs/train.txt" 2>&1
echo "training call ended with status $?" >> "$OUT/logs/train.txt"
# 3. evaluate the finished runs and write the table (nothing is trained here)
$PY -m irstd.cli.main sweep "$SWEEP" --report --no-progress > "$OUT/logs/report.txt" 2>&1
# 4. bring back the table, every run's logs and best checkpoint
DIR=runs/sweeps/sirst_table1_gpu
cp "$DIR"/table1.* "$DIR"/bench.json "$OUT"/ 2>/dev/null
for run in "$DIR"/*-seed*/; do
  name=$(basename "$run"); mkdir -p "$OUT/runs/$name"
  cp "$run"/config.yaml "$run"/log.csv "$run"/log.jsonl "$OUT/runs/$name/" 2>/dev/null
  for e in "$run"/eval-*/; do [ -d "$e" ] && mkdir -p "$OUT/runs/$name/$(basename "$e")" && cp "$e"/metrics.* "$OUT/runs/$name/$(basename "$e")/"; done
  [ -f "$run/last.state.pt" ] && [ -f "$run/eval-test-best/metrics.json" ] && cp "$run/best.safetensors" "$OUT/runs/$name/"
done
du -sh "$OUT" | tee -a "$OUT/logs/report.txt"
