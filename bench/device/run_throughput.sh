#!/usr/bin/env bash
# The GPU throughput benchmark on a bare CUDA machine, in about 8 minutes, from the repository root:
#   here:   bash bench/device/fetch_wheels.sh
#   there:  bash bench/device/run_throughput.sh      (with .whl carried along)
# It installs the carried wheels into /tmp/site, stands in empty modules for SimpleITK and Polars,
# and runs bench/train_throughput.py on the paper-sized partition: raw nnU-Net vs the pipeline (the
# ratio), then packed folds per GPU, each count without and with torch.compile and with nnU-Net's
# and the seg_order0 augmentation, most telling counts first, until the time budget. Results:
# $OUT (or /tmp/throughput)/throughput.json and throughput.log. On a machine with the packages installed, run the full sweep instead:
#   python -m bench.train_throughput --packed 1-8 --compile off,on --augmentation default,seg_order0
set -euo pipefail
cd "$(dirname "$0")/../.."
RESULTS=${OUT:-/tmp/throughput}
mkdir -p "$RESULTS"
source bench/device/carried_wheels.sh
export PYTHONUNBUFFERED=1 nnUNet_def_n_proc=${nnUNet_def_n_proc:-8}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$RESULTS/gpu.txt"
# Whatever was measured comes back, also when the run fails or is stopped.
trap 'cp /tmp/throughput/throughput.json "$RESULTS/" 2>/dev/null || true' EXIT
# Data and plans ~1.5 min, raw and pipeline ~2 min, then packed runs (2 epochs: the second is
# timed, after torch.compile's first); none starts after 400 s (one takes up to ~2 min), so the call
# ends inside a 10-minute limit with 5 folds in at least two of the four compile x augmentation
# variants (a second call with PACKED=5 COMPILE=on, or AUGMENTATION=default, measures the rest).
python3 -m bench.train_throughput --device cuda --epochs 3 --packed-epochs 2 \
  --packed "${PACKED:-5,8,1,2,4,6}" --compile "${COMPILE:-off,on}" \
  --augmentation "${AUGMENTATION:-default,seg_order0}" --budget-s "${BUDGET_S:-400}" \
  --out /tmp/throughput >"$RESULTS/full.log" 2>&1 &
bench=$!
tail -f "$RESULTS/full.log" --pid "$bench" | grep --line-buffered -E '^\[bench\]|Error|Traceback' || true
wait "$bench"
