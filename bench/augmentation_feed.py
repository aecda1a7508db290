"""What feeding a training through nnU-Net's augmentation worker processes costs the CPU, against
augmenting in the training process, at the paper's patch size, in one run.

Builds a paper-sized partition (bench/throughput_data.py: 208x208 slices, nnU-Net's own 2d plan:
224x224 patches, batch 16) and fold 0's trainer as the pipeline does, then draws training batches
  1. in-process on one thread (`nnUNet_n_proc_DA=0`, the baseline): CPU seconds per sample are
     the augmentation's own cost;
  2. through nnU-Net's NonDetMultiThreadedAugmenter with `--workers` processes (what a GPU
     training uses): CPU seconds of the worker processes and of the training process (its
     thread that receives the batches), per sample delivered.
The ratio 2/1 is what the worker processes add (pickling, queues) to each sample. From the CPU
seconds per sample follows the most a machine's cores can feed: cores / (CPU s per sample x
batch) iterations/s, the bound on packed GPU training when augmentation is the ceiling.
Run: python -m bench.augmentation_feed [--batches 60] [--rounds 3] [--workers 1,2]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.augmentation_paths import loader
from bench.resource_sampler import process_cpu_seconds
from bench.throughput_data import build_partition
from cmrbias_dagster.lib.design.study_file import load_study_design


def drawn(batches_of, batches: int, batch_size: int) -> dict[str, float]:
    """Wall and CPU seconds per sample of drawing `batches` batches; the CPU split between this
    process and the augmenter's worker processes (none in-process)."""
    workers = [process.pid for process in getattr(batches_of, "_processes", [])]
    worker_cpu = sum(map(process_cpu_seconds, workers))
    wall, own_cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(batches_of)
    samples = batches * batch_size
    own = (time.process_time() - own_cpu) / samples
    feeding = (sum(map(process_cpu_seconds, workers)) - worker_cpu) / samples
    return {
        "wall_ms": 1000 * (time.perf_counter() - wall) / samples,
        "training_process_cpu_ms": 1000 * own,
        "worker_cpu_ms": 1000 * feeding,
        "cpu_ms": 1000 * (own + feeding),
    }


def measure(env, path: str, workers: int, batches: int, round_: int) -> dict[str, float]:
    """One round of one feeding: `workers` augmentation processes, 0 meaning in-process."""
    os.environ["nnUNet_n_proc_DA"] = str(workers)
    batches_of, batch_size, _ = loader(env, path, seed=round_)
    for _ in range(8):  # past the workers' start and the queue's first fill
        next(batches_of)
    try:
        return drawn(batches_of, batches, batch_size)
    finally:
        if workers:
            batches_of._finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="worker processes to compare: '1,2'")
    parser.add_argument("--augmentation", default="default,seg_order0")
    parser.add_argument("--cores", type=int, default=16, help="cores of the machine to bound")
    args = parser.parse_args()
    import torch

    design = load_study_design(Path("data/study.yaml"))
    feedings = [0, *(int(w) for w in args.workers.split(","))]
    with tempfile.TemporaryDirectory(prefix="augmentation_feed_") as tmp:
        env = build_partition(design, "paper", 2, 5, Path(tmp), workers=1)
        env.activate()
        torch.set_num_threads(1)
        rounds = {(p, w): [] for p in args.augmentation.split(",") for w in feedings}
        for round_ in range(args.rounds):  # rounds alternate between the feedings
            for path, workers in rounds:
                rounds[path, workers].append(measure(env, path, workers, args.batches, round_))
    print_table(rounds, args)


def print_table(rounds: dict, args: argparse.Namespace) -> None:
    print(
        f"CPU per augmented sample, paper-sized partition (224x224, batch 16), {args.rounds} "
        f"rounds x {args.batches} batches, medians, {os.cpu_count()} cores here:"
    )
    print(
        "  augmentation | workers | wall ms | training process CPU ms | worker CPU ms | "
        f"CPU ms | vs in-process | {args.cores}-core bound (it/s)"
    )
    for (path, workers), runs in rounds.items():
        median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        baseline = statistics.median(run["cpu_ms"] for run in rounds[path, 0])
        bound = args.cores / (median["cpu_ms"] / 1000 * 16)
        print(
            f"  {path} | {workers or 'in-process'} | {median['wall_ms']:.2f} | "
            f"{median['training_process_cpu_ms']:.2f} | {median['worker_cpu_ms']:.2f} | "
            f"{median['cpu_ms']:.2f} | {median['cpu_ms'] / baseline:.2f}x | {bound:.0f}"
        )


if __name__ == "__main__":
    main()
