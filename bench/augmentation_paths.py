"""Augmented samples/s per core of nnU-Net's default training augmentation and of
`training: {augmentation: seg_order0}` (labels resampled by nearest neighbour), in one run.

For a quick-profile partition (64x64 slices, batch 8) and a paper-sized one (208x208 slices,
nnU-Net's own 2d plan: 224x224 patches, batch 16), builds fold 0's trainer as the pipeline does
(thread pools scanned once) and times its training loader in this process on one thread
(`nnUNet_n_proc_DA=0`): the case drawn, its crop and nnU-Net's transforms, batch by batch, per
second of wall time and of CPU time. Both paths draw the same cases and transforms (seeded
alike); rounds alternate between them, and each path's median round counts.
Run: python -m bench.augmentation_paths [--batches 40] [--rounds 5]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.throughput_data import DATASET, build_partition
from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment

PATHS = ("default", "seg_order0")
PARTITIONS = {"quick": 12, "paper": 2}  # profile: subjects per race x sex


def loader(env: NnunetEnvironment, augmentation: str, seed: int):
    """Fold 0's in-process training loader, built as the pipeline builds the trainer."""
    import numpy as np
    import torch

    from cmrbias_dagster.lib.nnunet.trainer_setup import build_trainer

    np.random.seed(seed)
    torch.manual_seed(seed)
    settings = TrainingSettings(augmentation=augmentation)
    trainer = build_trainer(env, DATASET, 0, settings, "cpu", resume=False)
    trainer.initialize()
    batches = trainer.get_dataloaders()[0]
    return batches, trainer.batch_size, trainer.configuration_manager.patch_size


def samples_per_second(env: NnunetEnvironment, batches: int, rounds: int) -> dict[str, dict]:
    """Each path's median augmented samples per second of wall time and per second of this
    process's CPU time (one core's busy time; steadier on a shared machine), over `rounds`
    alternating rounds of `batches`."""
    figures = {path: {"wall": [], "cpu": []} for path in PATHS}
    for round_ in range(rounds):
        for path in PATHS:
            batches_of, batch_size, _ = loader(env, path, seed=round_)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(batches):
                next(batches_of)
            samples = batches * batch_size
            figures[path]["wall"].append(samples / (time.perf_counter() - wall))
            figures[path]["cpu"].append(samples / (time.process_time() - cpu))
    return {
        path: {clock: statistics.median(values) for clock, values in clocks.items()}
        for path, clocks in figures.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    design = load_study_design(Path("data/study.yaml"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="augmentation_paths_") as tmp:
        for profile, per_group in PARTITIONS.items():
            started = time.perf_counter()
            env = build_partition(design, profile, per_group, 5, Path(tmp) / profile, workers=1)
            planned = time.perf_counter() - started
            rows.append((profile, planned, *measured(env, args.batches, args.rounds)))
    print(
        f"augmented samples/s, one thread, in-process ({args.rounds} rounds x {args.batches} "
        "batches, medians; per second of wall time and of CPU time):"
    )
    print(
        "  partition | planned in | patch | batch | clock | default (baseline) | seg_order0 | ratio"
    )
    for profile, planned, patch, batch_size, figures in rows:
        for clock in ("wall", "cpu"):
            default, order0 = figures["default"][clock], figures["seg_order0"][clock]
            print(
                f"  {profile} | {planned:.0f} s | {patch} | {batch_size} | {clock} | "
                f"{default:.1f} | {order0:.1f} | {order0 / default:.2f}x"
            )


def measured(env: NnunetEnvironment, batches: int, rounds: int) -> tuple[str, int, dict]:
    """The partition's patch, batch size and samples/s of each path, in this process."""
    import torch

    from cmrbias_dagster.lib.nnunet.trainer_hooks import scan_thread_pools_once

    # Set after planning, which drops nnUNet_n_proc_DA=0 and sets torch's threads itself.
    env.activate()
    os.environ["nnUNet_n_proc_DA"] = "0"
    torch.set_num_threads(1)
    _, batch_size, patch = loader(env, "default", seed=0)
    scan_thread_pools_once()  # as the pipeline's training does
    patch_text = "x".join(str(size) for size in patch)
    return patch_text, batch_size, samples_per_second(env, batches, rounds)


if __name__ == "__main__":
    main()
