"""Trainings at once on a CPU: the quick profile's `parallel_runs` (2, or `auto`) with `threads: 1`.

Builds a quick-profile partition (bench/throughput_data.py: 48 subjects, 64x64x8 at 2.2 mm, the
quick network and batch) and trains through the pipeline's path (CPU slot lease -> fresh process
-> lib.nnunet_training.train_fold), augmentation in-process, measuring iterations/s from nnU-Net's
epoch times (first epoch excluded):
  1. baseline: one fold alone with torch's default threads (every core), as before parallel_runs;
  2. one fold alone with one thread;
  3. for each count of --side-by-side (default 2; `auto` is what `parallel_runs: auto` resolves
     to here), that many folds side by side, one thread each; their sum against the baseline is
     the speed-up (`2,auto` on a many-core machine: the study's `auto` against 2).
Run: python -m bench.parallel_partitions [--epochs 6] [--iterations 50] [--side-by-side 2,auto]
"""

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.throughput_data import build_partition
from bench.train_throughput import in_pipeline, packed
from cmrbias_dagster.lib.design.parallelism import resolve_parallel_runs
from cmrbias_dagster.lib.design.study_file import load_study_design


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--side-by-side", default="2", help="fold counts at once: '2,auto'")
    args = parser.parse_args()
    counts = [side_by_side_count(count) for count in args.side_by_side.split(",")]
    design = load_study_design(Path("data/study.yaml"))
    quick = design.profile("quick").training
    one_core = replace(
        quick, epochs=args.epochs, iterations_per_epoch=args.iterations, save_every=args.epochs
    )
    every_core = replace(one_core, threads=None)
    with tempfile.TemporaryDirectory(prefix="parallel_partitions_") as tmp:
        env = build_partition(design, "quick", 12, max(5, *counts), Path(tmp), workers=2)
        lock = Path(tmp) / "leases"
        alone = in_pipeline(env, 0, every_core, lock, 1, "cpu")
        alone_one_thread = in_pipeline(env, 0, one_core, lock, 1, "cpu")
        side_by_side = {count: packed(env, one_core, lock, count, "cpu") for count in counts}
    print(f"{os.cpu_count()} cores; the quick network, batch and images; {args.epochs} epochs x")
    print(f"{args.iterations} iterations; iterations/s from the median epoch after the first")
    print(f"one fold, torch's default threads (baseline): {alone:.2f}")
    print(f"one fold, one thread:                          {alone_one_thread:.2f}")
    for count, rates in side_by_side.items():
        each = " + ".join(f"{rate:.2f}" for rate in rates)
        print(
            f"{count} folds side by side, one thread each: {each} = {sum(rates):.2f} "
            f"({sum(rates) / alone:.2f}x)"
        )


def side_by_side_count(setting: str) -> int:
    """A count, or `auto` as the study resolves it on this machine."""
    return resolve_parallel_runs(setting).runs


if __name__ == "__main__":
    main()
