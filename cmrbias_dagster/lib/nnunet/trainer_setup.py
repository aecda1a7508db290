"""Constructing the stock nnUNetTrainer for one fold with the profile's schedule and network,
writing into its recipe's trainer folder; never looked up by name (docs/nnunet_notes.md). Use
inside a fresh training process (lib.nnunet.isolation)."""

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.nnunet.augmentation import resample_segmentation_by_nearest
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.fold_records import (
    LATEST_CHECKPOINT,
    fold_folder,
    plans_file_name,
    trainer_folder,
)
from cmrbias_dagster.lib.nnunet.trainer_hooks import carry_random_state, use_adamw

if TYPE_CHECKING:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


def build_trainer(
    env: NnunetEnvironment,
    dataset: str,
    fold: int,
    settings: TrainingSettings,
    device: str,
    resume: bool,
) -> "nnUNetTrainer":
    """The fold's trainer of the settings' network with their schedule, optimizer and
    augmentation, writing into the recipe's trainer folder (trainer_folder), loaded from its
    latest checkpoint (and random state) when `resume`; its checkpoints carry the random state;
    it writes neither checkpoint_best.pth nor progress.png."""
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    preprocessed = env.preprocessed / dataset
    plans = json.loads((preprocessed / plans_file_name(settings)).read_text())
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    plans["continue_training"] = resume
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    configuration = settings.network.configuration
    trainer = nnUNetTrainer(plans, configuration, fold, dataset_json, torch.device(device))
    write_into(trainer, fold_folder(env, dataset, fold, trainer_folder(settings)))
    # Set before initialize(): the poly learning-rate schedule is built from num_epochs there.
    trainer.num_epochs = settings.epochs
    trainer.num_iterations_per_epoch = settings.iterations_per_epoch
    trainer.num_val_iterations_per_epoch = settings.val_iterations_per_epoch
    trainer.save_every = settings.save_every
    if settings.initial_lr is not None:
        trainer.initial_lr = settings.initial_lr
    if settings.optimizer == "adamw":
        use_adamw(trainer)
    if settings.augmentation == "seg_order0":
        resample_segmentation_by_nearest(trainer)
    carry_random_state(trainer)
    if resume:
        trainer.load_checkpoint(
            str(fold_folder(env, dataset, fold, trainer_folder(settings)) / LATEST_CHECKPOINT)
        )
    write_checkpoints_atomically(trainer)  # first: the other wrappers must see the final names
    _skip_discarded_work(trainer)
    return trainer


def write_into(trainer: "nnUNetTrainer", folder: Path) -> None:
    """Point the trainer's fold folder, trainer folder and log at `folder` instead of the
    `<class>__<plans>__<configuration>` folder its constructor chose (and created, holding only
    the log it began: moved along, and the folder removed when nothing else is in it). The
    predictor loads the trainer by the class name stored in the checkpoint, never by the folder's
    name."""
    constructed = Path(trainer.output_folder)
    if constructed == folder:
        return
    folder.mkdir(parents=True, exist_ok=True)
    log = Path(trainer.log_file)
    if log.is_file():
        log.replace(folder / log.name)
    trainer.output_folder_base = str(folder.parent)
    trainer.output_folder = str(folder)
    trainer.log_file = str(folder / log.name)
    trainer.logger.output_folder = str(folder)
    for empty in (constructed, constructed.parent):
        try:
            empty.rmdir()
        except OSError:  # not empty: another model's folds live there
            break


def _skip_discarded_work(trainer: "nnUNetTrainer") -> None:
    """nnU-Net saves checkpoint_best.pth whenever the EMA pseudo-Dice improves (nearly every epoch
    of a short schedule) and redraws progress.png (3000 x 5400 px) every epoch: 1.3-1.7 s a draw on
    the 2-core CPU, up to 10 s when it is busy. The pipeline uses only the final checkpoint and
    draws its own small curve from the stored per-epoch lists, so neither is written."""
    save_checkpoint = trainer.save_checkpoint

    def save_unless_best(filename: str) -> None:
        if not filename.endswith("checkpoint_best.pth"):
            save_checkpoint(filename)

    trainer.save_checkpoint = save_unless_best
    trainer.logger.plot_progress_png = lambda output_folder: None


def write_checkpoints_atomically(trainer: "nnUNetTrainer") -> None:
    """Each checkpoint written beside its name and renamed into place: a training killed while
    writing (SIGKILL, out of memory) keeps its previous checkpoint_latest.pth, which it resumes
    from, instead of a truncated one that no resume could load. Hooks that write files beside a
    checkpoint (Group DRO's weights) wrap this and see the final name."""
    save_checkpoint = trainer.save_checkpoint

    def save_then_rename(filename: str) -> None:
        partial = f"{filename}.partial"
        save_checkpoint(partial)
        if os.path.isfile(partial):  # nothing is written while checkpointing is disabled
            os.replace(partial, filename)

    trainer.save_checkpoint = save_then_rename
