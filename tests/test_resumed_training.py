"""A resumed fold continues its random streams: killed after a checkpoint and resumed, it ends with
the weights an uninterrupted training of the same seed ends with (CPU, in-process augmentation).
And what a fold records of how it was trained: its recipe and the stamp's run conditions."""

import json
import os
import shutil
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import torch

from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.epoch_reports import EpochReport
from cmrbias_dagster.lib.nnunet.fold_records import (
    RECIPE_FILE,
    RunConditions,
    fold_folder,
    trainer_folder,
    training_stamp,
)
from cmrbias_dagster.lib.nnunet.isolation import FreshProcessError, run_in_fresh_process
from cmrbias_dagster.lib.nnunet.training import train_fold
from cmrbias_dagster.resources import StudyResource
from tests.conftest import PLANNED_PARTITION


def stop_after_epoch(epoch: int, report: EpochReport) -> None:
    """Ends the training process as a kill would (no cleanup, no result) once `epoch` epochs are
    done and checkpointed."""
    if report.epoch == epoch:
        os._exit(9)


@pytest.fixture(scope="module")
def fold_inputs(planned_study, tmp_path_factory):
    """The planned partition's nnU-Net data, a seeded 5-epoch schedule checkpointed every epoch,
    and a fresh results folder per training."""
    study: StudyResource = planned_study.resources["study"]
    dataset = study.partition(PLANNED_PARTITION).dataset
    settings = replace(study.training_settings(), epochs=5, save_every=1, final_validation=False)
    assert settings.augmentation_workers == 0 and settings.seed is not None
    root = tmp_path_factory.mktemp("resume")
    source = planned_study.work / "tiny" / "nnunet"
    for part in ("raw", "preprocessed"):
        shutil.copytree(source / part, root / part)

    def environment(name: str) -> NnunetEnvironment:
        return NnunetEnvironment(root / "raw", root / "preprocessed", root / name)

    return dataset, settings, environment


def test_a_resumed_fold_ends_with_the_uninterrupted_folds_weights(fold_inputs) -> None:
    dataset, settings, environment = fold_inputs
    whole = run_in_fresh_process(train_fold, environment("whole"), dataset, 0, settings, "cpu")
    interrupted = environment("interrupted")
    with pytest.raises(FreshProcessError):
        run_in_fresh_process(
            train_fold, interrupted, dataset, 0, settings, "cpu", partial(stop_after_epoch, 2)
        )
    folder = fold_folder(interrupted, dataset, 0, trainer_folder(settings))
    assert (folder / "checkpoint_latest.pth").is_file()
    resumed = run_in_fresh_process(train_fold, interrupted, dataset, 0, settings, "cpu")
    assert (whole.start_epoch, resumed.start_epoch) == (0, 2)
    assert resumed.stamp == whole.stamp
    assert resumed.train_losses == whole.train_losses
    assert resumed.val_losses == whole.val_losses
    weights = [
        torch.load(r.checkpoint, weights_only=False)["network_weights"] for r in (whole, resumed)
    ]
    assert weights[0].keys() == weights[1].keys()
    differing = [name for name in weights[0] if not torch.equal(weights[0][name], weights[1][name])]
    assert not differing, f"{len(differing)} of {len(weights[0])} tensors differ"


def test_the_recipe_is_stored_beside_the_model(fold_inputs) -> None:
    dataset, settings, environment = fold_inputs
    result = run_in_fresh_process(train_fold, environment("whole"), dataset, 0, settings, "cpu")
    assert result.skipped  # trained by the test above, in the same results folder
    stored = json.loads((Path(result.checkpoint).parent / RECIPE_FILE).read_text())
    assert stored == result.recipe
    assert stored["optimizer"] == "sgd" and stored["initial_lr"] == 0.01
    assert stored["precision"] == "fp32" and stored["device_type"] == "cpu"
    assert (stored["epochs"], stored["iterations_per_epoch"]) == (5, settings.iterations_per_epoch)
    assert stored["augmentation"] == "default" and stored["augmentation_workers"] == 0
    assert stored["seed"] == settings.seed
    assert stored["versions"]["cmrbias_dagster"] and stored["versions"]["nnunetv2"] == "2.8.1"


@pytest.mark.parametrize(
    "changed",
    [
        RunConditions("bf16", "cpu", 0),
        RunConditions("fp32", "cuda", 0),
        RunConditions("fp32", "cpu", 2),
    ],
)
def test_each_run_condition_changes_the_stamp(fold_inputs, changed: RunConditions) -> None:
    dataset, settings, environment = fold_inputs
    env = environment("whole")
    cpu = training_stamp(env, dataset, settings, RunConditions("fp32", "cpu", 0))
    assert training_stamp(env, dataset, settings, changed) != cpu
