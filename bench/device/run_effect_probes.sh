#!/usr/bin/env bash
# Many `bench.effect_probe` runs side by side on a bare CUDA machine (16 cores), each with its own
# temporary nnU-Net folders and `--repeats 4`, so a profile question gets several folds per setting
# in one device call instead of one noisy fold a minute-and-a-half on the 2-core CPU.
#   here:   bash bench/device/fetch_wheels.sh
#   there:  bash bench/device/run_effect_probes.sh     (with .whl carried along)
# Probes are the lines of default_probes below ("name: effect_probe arguments"; the first H200 call
# of 2026-11-27: 300 vs 600 iterations), or a file named in $PROBES.
# Results in $OUT (or /tmp/effect_probes): summary.txt (each probe's gap lines) and logs.tar.gz.
set -euo pipefail
cd "$(dirname "$0")/../.."
RESULTS=${OUT:-/tmp/effect_probes}
mkdir -p "$RESULTS" /tmp/probe_logs
source bench/device/carried_wheels.sh
# One core per probe; nnU-Net compiles nothing (65 s a process) and exports in-process.
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nnUNet_compile=false \
  nnUNet_def_n_proc=1 nnUNet_n_proc_DA=0
DEVICE=${DEVICE:-cuda}
default_probes() {
  cat <<'EOF'
sex_24_300it: --train-sex male --train 30 --set training.epochs=12
sex_38_300it: --train-sex male --train 48 --set training.epochs=12
sex_76_300it: --train-sex male --train 96 --set training.epochs=12
sex_24_600it: --train-sex male --train 30 --set training.epochs=24
sex_38_600it: --train-sex male --train 48 --set training.epochs=24
sex_38_300it_1.8mm: --train-sex male --train 48 --set synthetic_cohort.pixel_mm=1.8 --set synthetic_cohort.matrix=72 --set training.epochs=12
race_24_300it: --train 30 --set training.epochs=12
race_38_300it: --train 48 --set training.epochs=12
race_76_300it: --train 96 --set training.epochs=12
race_24_600it: --train 30 --set training.epochs=24
race_38_600it: --train 48 --set training.epochs=24
race_38_300it_1.8mm: --train 48 --set synthetic_cohort.pixel_mm=1.8 --set synthetic_cohort.matrix=72 --set training.epochs=12
EOF
}
PROBE_LINES=$(if [[ -n "${PROBES:-}" ]]; then cat "$PROBES"; else default_probes; fi)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >"$RESULTS/gpu.txt" 2>&1 || true
pids=()
while IFS=: read -r name arguments; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  # shellcheck disable=SC2086  # the arguments are words
  timeout "${PROBE_TIMEOUT_S:-480}" python3 -m bench.effect_probe --device "$DEVICE" \
    --repeats "${REPEATS:-4}" $arguments >"/tmp/probe_logs/$name.log" 2>&1 &
  pids+=($!)
done <<<"$PROBE_LINES"
echo "[probes] ${#pids[@]} started on $DEVICE at $(date +%T)"
for pid in "${pids[@]}"; do wait "$pid" || true; done
echo "[probes] done at $(date +%T)"
for log in /tmp/probe_logs/*.log; do
  echo "== $(basename "$log" .log)"
  grep -E '^(gap|trained|training took|fold [0-9]+: (white|black|asian|female|male))' "$log" \
    || tail -n 5 "$log"
done | tee "$RESULTS/summary.txt"
tar -czf "$RESULTS/logs.tar.gz" -C /tmp probe_logs
