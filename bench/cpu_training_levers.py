"""Where a quick-profile iteration's time goes on a CPU, and what bf16 changes, in one run.

Builds a quick-profile partition (bench/throughput_data.py: 48 subjects, 64x64x8 at 2.2 mm, the
quick network and batch) and
  1. times, in one process and one thread, fetching an augmented batch (nnU-Net's default
     augmentation, in-process) and the training step in fp32 (nnU-Net on a CPU, the baseline)
     and in bf16 autocast with channels-last tensors (`training: {cpu_bf16: true}`), then with
     AdamW in torch's for-loop and fused implementations (`optimizer: adamw` uses the fused);
  2. trains fold 0 twice side by side, one core each as `make study` does, through the pipeline's
     path (fresh process, lib.nnunet.training.train_fold): fp32 and bf16, the quick schedule
     (or --epochs/--iterations), with nnU-Net's final validation, and prints s/iteration and
     the validation Dice of each, and the ratios.
Run: python -m bench.cpu_training_levers [--epochs 28] [--iterations 50]
"""

import argparse
import shutil
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import bench.cpu_training_levers as levers
from bench.throughput_data import DATASET, build_partition
from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.fold_records import fold_folder, trainer_folder
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.training import train_fold

FOLDERS = ("raw", "preprocessed", "results")


def step_times(env: NnunetEnvironment, repeats: int) -> dict[str, float]:
    """Milliseconds per augmented batch and per training step (fp32, bf16), one thread."""
    import time

    env.activate()
    import json
    import os

    import torch

    from cmrbias_dagster.lib.nnunet.trainer_hooks import (
        cpu_has_bf16,
        scan_thread_pools_once,
        train_in_bf16,
    )

    torch.set_num_threads(1)
    os.environ["nnUNet_n_proc_DA"] = "0"
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    preprocessed = env.preprocessed / DATASET
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    plans["continue_training"] = False
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    trainer = nnUNetTrainer(plans, "2d", 0, dataset_json, torch.device("cpu"))
    trainer.on_train_start()
    batches = [next(trainer.dataloader_train) for _ in range(4)]

    def milliseconds(work) -> float:
        for batch in batches:
            work(batch)
        started = time.perf_counter()
        for index in range(repeats):
            work(batches[index % len(batches)])
        return (time.perf_counter() - started) / repeats * 1000

    figures = {"batch, nnU-Net's loader": milliseconds(lambda _: next(trainer.dataloader_train))}
    scan_thread_pools_once()
    figures["batch, pools scanned once"] = milliseconds(lambda _: next(trainer.dataloader_train))
    figures["step fp32"] = milliseconds(trainer.train_step)
    if cpu_has_bf16():
        train_in_bf16(trainer)
        trainer.network.to(memory_format=torch.channels_last)
        figures["step bf16 + channels-last"] = milliseconds(trainer.train_step)
    for name, fused in (("AdamW, for-loop", False), ("AdamW, fused (the pipeline's)", True)):
        trainer.optimizer = torch.optim.AdamW(
            trainer.network.parameters(), lr=1e-2, amsgrad=True, fused=fused
        )
        figures[f"step, {name}"] = milliseconds(trainer.train_step)
    return figures


def trained(env: NnunetEnvironment, settings: TrainingSettings) -> dict[str, float]:
    """Train fold 0 through the pipeline's path; its s/iteration and validation Dice."""
    result = run_in_fresh_process(train_fold, env, DATASET, 0, settings, "cpu")
    epochs = [end - start for start, end in zip(*epoch_timestamps(env, settings), strict=False)][1:]
    return {
        "s/iteration": statistics.median(epochs) / settings.iterations_per_epoch,
        "fold seconds": result.seconds,
        **{f"validation Dice {k}": v for k, v in result.validation_dice.items()},
        "final EMA pseudo-Dice": result.ema_pseudo_dice[-1] if result.ema_pseudo_dice else 0.0,
        "precision": result.precision,
    }


def epoch_timestamps(
    env: NnunetEnvironment, settings: TrainingSettings
) -> tuple[list[float], list[float]]:
    import torch

    folder = fold_folder(env, DATASET, 0, trainer_folder(settings))
    logging = torch.load(folder / "checkpoint_final.pth", weights_only=False)["logging"]
    return logging["epoch_start_timestamps"], logging["epoch_end_timestamps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    design = load_study_design(Path("data/study.yaml"))
    quick = design.profile("quick").training
    schedule = replace(
        quick,
        epochs=args.epochs or quick.epochs,
        iterations_per_epoch=args.iterations or quick.iterations_per_epoch,
        save_every=args.epochs or quick.epochs,
        final_validation=True,
        threads=1,
    )
    with tempfile.TemporaryDirectory(prefix="cpu_levers_") as tmp:
        fp32_env = build_partition(design, "quick", 12, 5, Path(tmp) / "fp32", workers=2)
        bf16_env = NnunetEnvironment(*(Path(tmp) / "bf16" / name for name in FOLDERS))
        for name in ("raw", "preprocessed"):
            shutil.copytree(Path(tmp) / "fp32" / name, Path(tmp) / "bf16" / name)
        # By module name: the fresh process cannot unpickle a function of __main__.
        micro = run_in_fresh_process(levers.step_times, fp32_env, args.repeats)
        with ThreadPoolExecutor(2) as pool:
            baseline = pool.submit(trained, fp32_env, replace(schedule, cpu_bf16=False))
            with_levers = pool.submit(trained, bf16_env, replace(schedule, cpu_bf16=True))
            runs = {
                "fp32 (baseline)": baseline.result(),
                "bf16 + channels-last": with_levers.result(),
            }
    print("one process, one thread (ms):")
    for name, value in micro.items():
        print(f"  {name:28s} {value:7.1f}")
    if "step bf16 + channels-last" in micro:
        ratio = micro["step fp32"] / micro["step bf16 + channels-last"]
        print(f"  step speed-up bf16: {ratio:.2f}x")
    ratio = micro["step, AdamW, for-loop"] / micro["step, AdamW, fused (the pipeline's)"]
    print(f"  step speed-up fused AdamW: {ratio:.2f}x")
    print(
        f"fold 0 trained side by side, one core each, {schedule.epochs} x "
        f"{schedule.iterations_per_epoch} iterations:"
    )
    names = list(runs["fp32 (baseline)"])
    print("  " + " | ".join(["run", *names]))
    for run, figures in runs.items():
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in figures.values()]
        print("  " + " | ".join([run, *cells]))
    base, fast = runs["fp32 (baseline)"], runs["bf16 + channels-last"]
    print(
        f"  s/iteration ratio (baseline / levers): {base['s/iteration'] / fast['s/iteration']:.2f}x"
    )
    print(
        f"  mean validation Dice levers - baseline: "
        f"{fast['validation Dice mean'] - base['validation Dice mean']:+.4f}"
    )


if __name__ == "__main__":
    main()
