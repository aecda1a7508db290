"""Two trainings at once on a small CPU: the quick profile's `parallel_runs: 2` with `threads: 1`.

Builds a quick-profile partition (bench/throughput_data.py: 48 subjects, 64x64x8 at 2.2 mm, the
quick network and batch) and trains through the pipeline's path (CPU slot lease -> fresh process
-> lib.nnunet_training.train_fold), augmentation in-process, measuring iterations/s from nnU-Net's
epoch times (first epoch excluded):
  1. baseline: one fold alone with torch's default threads (every core), as before parallel_runs;
  2. one fold alone with one thread;
  3. two folds side by side, one thread each; their sum against the baseline is the speed-up.
Run: python -m bench.parallel_partitions [--epochs 6] [--iterations 50]
"""

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.throughput_data import build_partition
from bench.train_throughput import in_pipeline, packed
from cmrbias_dagster.lib.design.study import load_study_design


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    design = load_study_design(Path("data/study.yaml"))
    quick = design.profile("quick").training
    one_core = replace(
        quick, epochs=args.epochs, iterations_per_epoch=args.iterations, save_every=args.epochs
    )
    every_core = replace(one_core, threads=None)
    with tempfile.TemporaryDirectory(prefix="parallel_partitions_") as tmp:
        env = build_partition(design, "quick", 12, 5, Path(tmp), workers=2)
        lock = Path(tmp) / "leases"
        alone = in_pipeline(env, 0, every_core, lock, 1, "cpu")
        alone_one_thread = in_pipeline(env, 0, one_core, lock, 1, "cpu")
        side_by_side = packed(env, one_core, lock, 2, "cpu")
    print(f"{os.cpu_count()} cores; the quick network, batch and images; {args.epochs} epochs x")
    print(f"{args.iterations} iterations; iterations/s from the median epoch after the first")
    print(f"one fold, torch's default threads (baseline): {alone:.2f}")
    print(f"one fold, one thread:                          {alone_one_thread:.2f}")
    print(
        f"two folds side by side, one thread each:       {side_by_side[0]:.2f} + "
        f"{side_by_side[1]:.2f} = {sum(side_by_side):.2f} ({sum(side_by_side) / alone:.2f}x)"
    )


if __name__ == "__main__":
    main()
