"""Training throughput: the pipeline's fold training against raw nnU-Net, same plans, one run.

Builds a paper-sized synthetic partition (bench/throughput_data.py: 176 subjects = 352 cases at
208x208x10, 1.8 mm, the paper profile's plan edit: 2d, batch 16) and measures iterations/s from
nnU-Net's own epoch times, first epoch excluded:
  1. raw nnU-Net: the stock nnUNetTrainer built directly and run in its own process (what
     `nnUNetv2_train -tr nnUNetTrainer_<E>epochs` runs), fold 0;
  2. in-pipeline: the fold-checkpoint asset's path (device slot lease -> fresh process ->
     lib.nnunet_training.train_fold), fold 1, same schedule; the ratio 2/1 is the pipeline's cost;
  3. packed: N folds at once through the same path sharing one GPU (folds_per_gpu=N), for each N of
     --packed, each torch.compile setting of --compile (nnU-Net reads `nnUNet_compile`) and each
     augmentation of --augmentation (`default`, nnU-Net's; `seg_order0`, lib.nnunet.augmentation),
     with what each run used (bench/resource_sampler.py): the machine's busy cores, cores per
     training process and per augmentation worker, GPU utilisation and GPU memory per fold.
Any CUDA machine:  python -m bench.train_throughput [--packed 1-8] [--compile off,on]
                   [--augmentation default,seg_order0]
CPU smoke check:   python -m bench.train_throughput --device cpu   (tiny profile; not the GPU goal)
A bare GPU machine with wheels carried along: bench/device/run_throughput.sh.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from bench.resource_sampler import ResourceSampler
from bench.throughput_data import DATASET, build_partition
from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.device_leases import lease_gpu, visible_gpus
from cmrbias_dagster.lib.nnunet.fold_records import fold_folder, trainer_folder
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.training import train_fold

# Per device: profile, subjects per race x sex, epochs, iterations, validation iterations, packed
# folds, compile settings, augmentation workers (None: nnU-Net's default) alone and when packed.
# On 2 CPU cores nnU-Net's default worker processes swamp the training: augment in-process there.
PRESETS = {
    "cuda": dict(profile="paper", per_group=44, epochs=5, iterations=250, val_iterations=50,
                 packed="1-8", packed_epochs=3, compile="off,on", augmentation="default,seg_order0",
                 workers=None, packed_workers=3),
    "cpu": dict(profile="tiny", per_group=4, epochs=4, iterations=20, val_iterations=2,
                packed="1,2", packed_epochs=4, compile="off", augmentation="default", workers=0,
                packed_workers=0),
}  # fmt: skip
RAW_TRAINING = """
import json, sys, torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
folder, fold, device, epochs, iterations, val_iterations = sys.argv[1:]
plans = json.load(open(folder + "/nnUNetPlans.json"))
plans["continue_training"] = False
trainer = nnUNetTrainer(plans, "2d", int(fold), json.load(open(folder + "/dataset.json")),
                        torch.device(device))
trainer.num_epochs, trainer.num_iterations_per_epoch = int(epochs), int(iterations)
trainer.num_val_iterations_per_epoch = int(val_iterations)
trainer.run_training()
"""


def folds_in(spec: str) -> list[int]:
    """'1-8' or '1,2,5' as a list of fold counts."""
    if "-" in spec:
        first, last = (int(part) for part in spec.split("-"))
        return list(range(first, last + 1))
    return [int(part) for part in spec.split(",")]


def iterations_per_second(fold_dir: Path, iterations: int) -> float:
    """From nnU-Net's own training log: iterations / median epoch time, first epoch excluded."""
    log = sorted(fold_dir.glob("training_log_*.txt"))[-1].read_text()
    times = [float(t) for t in re.findall(r"Epoch time: ([0-9.]+) s", log)]
    return iterations / statistics.median(times[1:])


def raw_nnunet(env: NnunetEnvironment, settings: TrainingSettings, device: str) -> float:
    """The stock nnUNetTrainer on fold 0, in its own process, no pipeline code (in nnU-Net's own
    folder, the stock recipe's)."""
    folder = fold_folder(env, DATASET, 0, trainer_folder(TrainingSettings()))
    shutil.rmtree(folder, ignore_errors=True)
    schedule = (settings.epochs, settings.iterations_per_epoch, settings.val_iterations_per_epoch)
    command = [sys.executable, "-c", RAW_TRAINING, str(env.preprocessed / DATASET), "0", device]
    environment = {**os.environ, **env.variables()}
    if settings.augmentation_workers is not None:  # as train_fold sets it for the pipeline
        environment["nnUNet_n_proc_DA"] = str(settings.augmentation_workers)
    subprocess.run([*command, *map(str, schedule)], env=environment, check=True)
    return iterations_per_second(folder, settings.iterations_per_epoch)


def in_pipeline(
    env: NnunetEnvironment,
    fold: int,
    settings: TrainingSettings,
    lock: Path,
    packing: int,
    device: str,
) -> float:
    """The fold-checkpoint asset's path (TrainingResource.run without Dagster): lease a device
    slot, train in a fresh process."""
    folder = fold_folder(env, DATASET, fold, trainer_folder(settings))
    shutil.rmtree(folder, ignore_errors=True)
    gpus = visible_gpus() if device == "cuda" else ["cpu"]
    with lease_gpu(lock, gpus, packing) as slot:
        environment = slot.environment() if device == "cuda" else None
        run_in_fresh_process(
            train_fold, env, DATASET, fold, settings, device, environment=environment
        )
    return iterations_per_second(folder, settings.iterations_per_epoch)


def packed(
    env: NnunetEnvironment, settings: TrainingSettings, lock: Path, folds: int, device: str
) -> list[float]:
    """Iterations/s of each of `folds` folds trained at once on one device."""
    with ThreadPoolExecutor(folds) as pool:
        runs = [
            pool.submit(in_pipeline, env, f, settings, lock, folds, device) for f in range(folds)
        ]
        return [run.result() for run in runs]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=sorted(PRESETS), default="cuda")
    for name in ("per-group", "epochs", "iterations", "val-iterations", "packed-epochs"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--packed", help="fold counts per device: '1-8' or '1,5,8'")
    parser.add_argument("--compile", help="torch.compile settings to sweep: 'off,on'")
    parser.add_argument("--augmentation", help="augmentations to sweep: 'default,seg_order0'")
    parser.add_argument("--skip-single", action="store_true", help="only the packed sweep")
    parser.add_argument("--budget-s", type=float, help="start no packed run after this many s")
    parser.add_argument("--threads", type=int, default=8, help="for data and planning")
    parser.add_argument("--out", type=Path, default=Path("/tmp/throughput"))
    args = parser.parse_args()
    for key, value in PRESETS[args.device].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.device == "cpu" and "on" in args.compile:
        parser.error("nnU-Net never compiles on the CPU: use --compile off")
    return args


def main() -> None:
    args, started = arguments(), time.monotonic()
    folds = folds_in(args.packed)
    design = load_study_design(Path(__file__).parents[1] / "data" / "study.yaml")
    shutil.rmtree(args.out, ignore_errors=True)
    splits = max(5, *folds)  # a fold per packed process
    env = build_partition(design, args.profile, args.per_group, splits, args.out, args.threads)
    figures: dict[str, object] = {
        "device": device_name(args.device),
        "date": time.strftime("%Y-%m-%d"),
        "profile": args.profile,
        "cases": 4 * args.per_group * 2,
        "data_and_plans_s": round(time.monotonic() - started),
    }
    report(figures, args.out)
    lock = args.out / "locks"
    if not args.skip_single:
        single = TrainingSettings(
            args.epochs,
            args.iterations,
            args.val_iterations,
            final_validation=False,
            augmentation_workers=args.workers,
        )
        os.environ["nnUNet_compile"] = "false"  # as the 27.6 it/s anchor; compile is swept below
        figures["raw_it_s"] = raw_nnunet(env, single, args.device)
        figures["pipeline_it_s"] = in_pipeline(env, 1, single, lock, 1, args.device)
        figures["pipeline_vs_raw"] = figures["pipeline_it_s"] / figures["raw_it_s"]
        report(figures, args.out)
    settings = TrainingSettings(
        args.packed_epochs,
        args.iterations,
        args.val_iterations,
        final_validation=False,
        augmentation_workers=args.packed_workers,
    )
    sweep = figures.setdefault("packed", [])
    # Each count with every compile setting and augmentation before the next count: a budget
    # keeps the pairs.
    variants = [
        (compiled, augmentation)
        for compiled in args.compile.split(",")
        for augmentation in args.augmentation.split(",")
    ]
    for count in folds:
        for compile_setting, augmentation in variants:
            if args.budget_s and time.monotonic() - started > args.budget_s:
                figures["stopped_by_budget"] = True
                break
            os.environ["nnUNet_compile"] = "true" if compile_setting == "on" else "false"
            variant = replace(settings, augmentation=augmentation)
            with ResourceSampler() as used:
                rates = packed(env, variant, lock, count, args.device)
            sweep.append(
                {
                    "compile": compile_setting,
                    "augmentation": augmentation,
                    "folds": count,
                    "per_process_it_s": rates,
                    "aggregate_it_s": sum(rates),
                    "resources": used.summary(),
                }
            )
            if "raw_it_s" in figures:
                sweep[-1]["aggregate_vs_raw"] = sum(rates) / figures["raw_it_s"]
            report(figures, args.out)
    print(json.dumps(figures, indent=2))


def report(figures: dict[str, object], out: Path) -> None:
    """Write the figures so far (a run stopped by a time limit keeps what it measured)."""
    (out / "throughput.json").write_text(json.dumps(figures, indent=2))
    print(f"[bench] {json.dumps(figures)}", flush=True)


def device_name(device: str) -> str:
    if device == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
    return subprocess.run(query, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
