"""Training one nnU-Net fold with the stock nnUNetTrainer (in its recipe's trainer folder,
fold_records.trainer_folder): fresh, resumed, or skipped when done;
with the experiment's bias mitigation, if it has one (docs/mitigation.md), or as protected models:
one such training per group of the fold.

Call `train_fold` in a fresh process (lib.isolation): it sets nnU-Net's environment variables and
imports torch. The trainer is constructed directly, never looked up by name (docs/nnunet_notes.md).
"""

import json
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.epoch_reports import EpochListener
from cmrbias_dagster.lib.nnunet.fold_records import (
    FINAL_CHECKPOINT,
    FoldResult,
    RunConditions,
    completed_result,
    fold_folder,
    move_legacy_fold,
    prepare_folder,
    store_recipe,
    store_result,
    trainer_folder,
    training_recipe,
    training_stamp,
)
from cmrbias_dagster.lib.nnunet.fold_twins import adopt_twin, trained_twin, training_lock
from cmrbias_dagster.lib.nnunet.mitigation import apply_mitigation, mitigation_stamp
from cmrbias_dagster.lib.nnunet.mitigation.protected import (
    cases_of_group,
    fold_training_groups,
    group_environment,
    read_splits,
)
from cmrbias_dagster.lib.nnunet.trainer_hooks import (
    cpu_has_bf16,
    report_each_epoch,
    scan_thread_pools_once,
    seed_augmentation_workers,
    train_in_bf16,
)
from cmrbias_dagster.lib.nnunet.trainer_setup import build_trainer

if TYPE_CHECKING:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

NO_MITIGATION = Mitigation()
PROTECTED_MODELS = Mitigation("protected_models")


def train_fold(
    env: NnunetEnvironment,
    dataset: str,
    fold: int,
    settings: TrainingSettings,
    device: str,
    on_epoch: EpochListener | None = None,
    mitigation: Mitigation = NO_MITIGATION,
    case_groups: Mapping[str, str] | None = None,
) -> FoldResult:
    """Train (or resume, or skip) one fold; keep only checkpoint_final.pth at the end. A fold
    whose identical training (same stamp) another partition finished reuses that training.
    `on_epoch` hears each epoch this call trains (none when the fold is skipped or adopted).
    An active `mitigation` needs `case_groups` (case id -> group) of the fold's training cases;
    it enters the stamp, so a mitigated fold never reuses an unmitigated training."""
    groups = dict(case_groups or {})
    if mitigation.active and not groups:
        raise ValueError(f"{dataset} fold {fold}: mitigation {mitigation.label!r} needs groups")
    conditions = run_conditions(settings, device)
    stamp = training_stamp(env, dataset, settings, conditions, mitigation_stamp(mitigation, groups))
    trainer = trainer_folder(settings)
    with training_lock(env, stamp):
        move_legacy_fold(env, dataset, fold, trainer, stamp)
        folder = fold_folder(env, dataset, fold, trainer)
        done = completed_result(folder, stamp)
        if done is not None:
            return done
        twin = trained_twin(env, dataset, fold, trainer, stamp)
        if twin is not None:
            return adopt_twin(env, dataset, fold, settings, twin)
        return _train(
            env, dataset, fold, settings, device, conditions, stamp, on_epoch, mitigation, groups
        )


def run_conditions(settings: TrainingSettings, device: str) -> RunConditions:
    """The precision, device type and augmentation worker count this process will train with;
    sets nnU-Net's worker count (nnUNet_n_proc_DA) from the settings when they give one."""
    import torch
    from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA

    if settings.augmentation_workers is not None:
        os.environ["nnUNet_n_proc_DA"] = str(settings.augmentation_workers)
    device_type = torch.device(device).type
    if device_type == "cpu" and settings.cpu_bf16 and cpu_has_bf16():
        precision = "bf16"
    else:  # nnU-Net autocasts to float16 with a gradient scaler on CUDA only
        precision = "fp16_amp" if device_type == "cuda" else "fp32"
    return RunConditions(precision, device_type, get_allowed_n_proc_DA())


def train_group_models(
    env: NnunetEnvironment,
    dataset: str,
    fold: int,
    settings: TrainingSettings,
    device: str,
    on_epoch: EpochListener | None = None,
    mitigation: Mitigation = PROTECTED_MODELS,
    case_groups: Mapping[str, str] | None = None,
) -> dict[str, FoldResult]:
    """Protected models of one fold: per group with training cases in the fold, `train_fold` on
    that group's cases only, into the group's results tree (group_environment); by group."""
    if mitigation.strategy != "protected_models":
        raise ValueError(f"{dataset} fold {fold}: one model per group is protected models' only")
    if not case_groups:
        raise ValueError(f"{dataset} fold {fold}: protected models need case groups")
    groups = fold_training_groups(read_splits(env, dataset), fold, case_groups)
    return {
        group: train_fold(
            group_environment(env, group),
            dataset,
            fold,
            settings,
            device,
            on_epoch,
            mitigation,
            cases_of_group(case_groups, group),
        )
        for group in groups
    }


def _train(
    env: NnunetEnvironment,
    dataset: str,
    fold: int,
    settings: TrainingSettings,
    device: str,
    conditions: RunConditions,
    stamp: str,
    on_epoch: EpochListener | None,
    mitigation: Mitigation,
    groups: dict[str, str],
) -> FoldResult:
    started = time.monotonic()
    folder = fold_folder(env, dataset, fold, trainer_folder(settings))
    resume = prepare_folder(folder, stamp)
    env.activate()
    if settings.seed is not None:
        seed_generators(settings.seed + fold)
        seed_augmentation_workers(settings.seed + fold)
    trainer = build_trainer(env, dataset, fold, settings, device, resume)
    if mitigation.active:
        apply_mitigation(trainer, mitigation, groups)
    if conditions.precision == "bf16":
        train_in_bf16(trainer)
    if on_epoch is not None:
        report_each_epoch(trainer, fold, on_epoch)
    scan_thread_pools_once()
    start_epoch = trainer.current_epoch
    trainer.run_training()
    validation = _final_validation(trainer, folder) if settings.final_validation else {}
    (folder / "checkpoint_best.pth").unlink(missing_ok=True)
    recipe = training_recipe(
        settings, conditions, fold, trainer.initial_lr, mitigation.label, _versions()
    )
    store_recipe(folder, recipe)
    result = _result(trainer, folder, fold, device, start_epoch, validation, stamp, started)
    result = replace(
        result, precision=conditions.precision, mitigation=mitigation.label, recipe=recipe
    )
    store_result(folder, result)
    return result


def _versions() -> dict[str, str]:
    return {name: version(name) for name in ("cmrbias_dagster", "nnunetv2", "torch")}


def seed_generators(seed: int) -> None:
    """Seed every generator nnU-Net's training process draws from: the weights' initialisation,
    the cases and crops drawn, and in-process augmentation (augmentation workers are seeded by
    seed_augmentation_workers). On a CPU the same seed then gives the same fold with in-process
    augmentation or one worker; CUDA kernels may still differ between runs.
    """
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _final_validation(trainer: "nnUNetTrainer", folder: Path) -> dict[str, float]:
    trainer.perform_actual_validation(save_probabilities=False)
    summary = json.loads((folder / "validation" / "summary.json").read_text())
    names = {str(v): k for k, v in trainer.dataset_json["labels"].items()}
    dice = {names.get(label, label): float(m["Dice"]) for label, m in summary["mean"].items()}
    return {**dice, "mean": float(summary["foreground_mean"]["Dice"])}


def _result(
    trainer: "nnUNetTrainer",
    folder: Path,
    fold: int,
    device: str,
    start_epoch: int,
    validation: dict[str, float],
    stamp: str,
    started: float,
) -> FoldResult:
    log = trainer.logger
    starts, ends = (
        log.get_value("epoch_start_timestamps", None),
        log.get_value("epoch_end_timestamps", None),
    )
    checkpoint = folder / FINAL_CHECKPOINT
    return FoldResult(
        fold=fold,
        device=device,
        start_epoch=start_epoch,
        epochs_run=trainer.current_epoch,
        train_losses=[float(x) for x in log.get_value("train_losses", None)],
        val_losses=[float(x) for x in log.get_value("val_losses", None)],
        pseudo_dice=[float(x) for x in log.get_value("dice_per_class_or_region", -1)],
        ema_pseudo_dice=[float(x) for x in log.get_value("ema_fg_dice", None)],
        mean_epoch_seconds=float(
            sum(e - s for s, e in zip(starts, ends, strict=False)) / max(len(ends), 1)
        ),
        validation_dice=validation,
        checkpoint=str(checkpoint),
        checkpoint_bytes=checkpoint.stat().st_size,
        seconds=time.monotonic() - started,
        stamp=stamp,
    )
