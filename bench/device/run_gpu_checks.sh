#!/usr/bin/env bash
# The GPU checks of one device session in one call, on a bare CUDA machine, from the repository root:
#   here:   bash bench/device/fetch_wheels.sh
#   there:  bash bench/device/run_gpu_checks.sh      (the run's carry: [".whl"]; timeout_s 600)
# Each part has its own time budget so that the call ends inside 10 minutes (the sum below is
# ~9 min with data and plans); what a part measured is in $OUT even when a later part fails:
#   1. throughput (bench/train_throughput.py): raw nnU-Net and the pipeline alone (2 epochs, the
#      second timed), then packed folds with the resources each run used (GPU utilisation and
#      memory per fold, cores per training process and per augmentation worker), most telling
#      first, none started after THROUGHPUT_BUDGET_S;
#   2. a paper-profile fold (bench/paper_fold.py) on the same partition for PAPER_FOLD_S seconds:
#      per-epoch loss and pseudo-Dice of the paper's schedule, and what an epoch costs (part 1's
#      partition has 8 folds, so fold 0 trains on 7/8 of its 176 subjects, not 4/5: an epoch is
#      250 iterations either way);
#   3. the quick profile's trainings side by side on the CPU cores (bench/parallel_partitions.py):
#      `parallel_runs: auto` against 2.
# PARTS=1,2,3 picks parts; the other variables set budgets and sweeps. DEVICE=cpu is the dry run
# here before a device session (tiny settings, no GPU figures): it proves the script end to end.
set -euo pipefail
cd "$(dirname "$0")/../.."
RESULTS=${OUT:-/tmp/gpu_checks}
mkdir -p "$RESULTS"
source bench/device/carried_wheels.sh
export PYTHONUNBUFFERED=1 nnUNet_def_n_proc=${nnUNet_def_n_proc:-8} PYTHONPATH=${PYTHONPATH:-$PWD}
PARTS=${PARTS:-1,2,3} DEVICE=${DEVICE:-cuda}
if [[ $DEVICE == cuda ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$RESULTS/gpu.txt"
  COMPILE=${COMPILE:-off,on}
else
  PACKED=${PACKED:-1,2}
fi
echo "$(nproc) cores" | tee -a "$RESULTS/gpu.txt"
trap 'cp /tmp/throughput/throughput.json /tmp/paper_fold/paper_fold.json "$RESULTS/" 2>/dev/null || true' EXIT
show() { grep --line-buffered -E '^\[bench\]|folds? side by side|^one fold|Error|Traceback' || true; }

if [[ $PARTS == *1* ]]; then
  python3 -m bench.train_throughput --device "$DEVICE" --epochs 2 --packed-epochs 2 \
    --packed "${PACKED:-5,8}" --compile "${COMPILE:-off}" \
    --augmentation "${AUGMENTATION:-seg_order0,default}" --budget-s "${THROUGHPUT_BUDGET_S:-180}" \
    --out /tmp/throughput 2>&1 | tee "$RESULTS/throughput.log" | show || echo "[bench] part 1 failed"
fi
if [[ $PARTS == *2* ]]; then
  partition=()
  [[ -d /tmp/throughput/preprocessed ]] && partition=(--partition /tmp/throughput)
  python3 -m bench.paper_fold --device "$DEVICE" --budget-s "${PAPER_FOLD_S:-200}" "${partition[@]}" \
    --out /tmp/paper_fold 2>&1 | tee "$RESULTS/paper_fold.log" | show || echo "[bench] part 2 failed"
fi
if [[ $PARTS == *3* ]]; then
  python3 -m bench.parallel_partitions --epochs 4 --iterations 40 --side-by-side 2,auto \
    2>&1 | tee "$RESULTS/parallel_partitions.log" | show || echo "[bench] part 3 failed"
fi
