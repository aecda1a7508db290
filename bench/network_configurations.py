"""What a training iteration costs on a CPU for each network a design may choose (docs/study.md,
"The network"): nnU-Net's configuration (2d, 3d_fullres) x planner (default, ResEnc M/L).

Builds a quick-profile partition (bench/throughput_data.py: 48 subjects, 64x64x8 at 2.2 mm), plans
and preprocesses it once per network with the quick profile's plan edits (batch 8, features
[8, 16, 32, 64]), builds each fold-0 trainer as the pipeline does (lib.nnunet.trainer_setup:
AdamW, bf16 on a CPU with native bf16, one thread, in-process augmentation) in a fresh process,
and times whole iterations (fetch an augmented batch, train step) after a warm-up. Prints
s/iteration and the ratio to the 2d default network.
Run: python -m bench.network_configurations [--iterations 6] [--warmup 2]
"""

import argparse
import json
import platform
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import bench.network_configurations as this  # picklable by name in the fresh process
from bench.throughput_data import DATASET, DATASET_ID, build_partition
from cmrbias_dagster.lib.design.settings import NetworkSettings, TrainingSettings
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.plans import plan_and_preprocess

NETWORKS = (
    NetworkSettings("2d", "default"),
    NetworkSettings("2d", "nnUNetPlannerResEncM"),
    NetworkSettings("2d", "nnUNetPlannerResEncL"),
    NetworkSettings("3d_fullres", "default"),
    NetworkSettings("3d_fullres", "nnUNetPlannerResEncM"),
)


def seconds_per_iteration(
    env: NnunetEnvironment, settings: TrainingSettings, iterations: int, warmup: int
) -> dict[str, object]:
    """Mean seconds of `iterations` whole training iterations after `warmup`, with
    the network's patch, batch and parameter count."""
    import time

    from cmrbias_dagster.lib.nnunet.trainer_hooks import train_in_bf16
    from cmrbias_dagster.lib.nnunet.trainer_setup import build_trainer
    from cmrbias_dagster.lib.nnunet.training import run_conditions, seed_generators

    conditions = run_conditions(settings, "cpu")
    env.activate()
    seed_generators(0)
    trainer = build_trainer(env, DATASET, 0, settings, "cpu", resume=False)
    if conditions.precision == "bf16":
        train_in_bf16(trainer)
    trainer.on_train_start()
    trainer.network.train()

    def iteration() -> None:
        trainer.train_step(next(trainer.dataloader_train))

    for _ in range(warmup):
        iteration()
    started = time.perf_counter()
    for _ in range(iterations):
        iteration()
    seconds = (time.perf_counter() - started) / iterations
    config = trainer.configuration_manager
    return {
        "s/iteration": seconds,
        "patch": list(config.patch_size),
        "batch": config.batch_size,
        "parameters": sum(p.numel() for p in trainer.network.parameters()),
        "precision": conditions.precision,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    design = load_study_design()
    quick = design.profile("quick")
    root = Path(tempfile.mkdtemp(prefix="network_configurations_"))
    try:
        base = build_partition(design, "quick", per_group=12, folds=5, out=root, workers=2)
        splits = (base.preprocessed / DATASET / "splits_final.json").read_text()
        figures = {}
        for network in NETWORKS:
            name = f"{network.configuration} {network.planner}"
            env = NnunetEnvironment(
                base.raw, root / f"pre_{name.replace(' ', '_')}", root / "results"
            )
            run_in_fresh_process(
                plan_and_preprocess,
                DATASET_ID,
                env,
                quick.nnunet,
                json.loads(splits),
                network=network,
            )
            settings = replace(quick.training, network=network, seed=0)
            figures[name] = run_in_fresh_process(
                this.seconds_per_iteration, env, settings, args.iterations, args.warmup
            )
            print(name, figures[name], flush=True)
        baseline = figures["2d default"]["s/iteration"]
        print(f"\n{platform.processor() or platform.machine()}, quick profile's plan edits")
        print(f"{'network':34} {'s/iteration':>11} {'x 2d':>6} {'patch':>14} {'batch':>5} params")
        for name, row in figures.items():
            print(
                f"{name:34} {row['s/iteration']:11.3f} {row['s/iteration'] / baseline:6.2f} "
                f"{str(row['patch']):>14} {row['batch']:5d} {row['parameters']:,}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
