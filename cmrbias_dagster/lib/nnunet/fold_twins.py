"""Partitions that drew the same training set share one training: the first trains the fold under
a lock of its stamp, the others wait, then adopt its model instead of training it again."""

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
from cmrbias_dagster.lib.nnunet.fold_records import (
    FINAL_CHECKPOINT,
    RESULT_FILE,
    STAMP_FILE,
    FoldResult,
    completed_result,
    fold_folder,
    plans_file_name,
    read_result,
    store_recipe,
    store_result,
    trainer_folder,
)


@contextmanager
def training_lock(env: NnunetEnvironment, stamp: str) -> Iterator[None]:
    """Hold the lock of one stamp while its fold trains: a partition that drew the same training
    set waits, then reuses the result instead of training it twice at the same time."""
    locks = env.results / ".training_locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{stamp}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def trained_twin(
    env: NnunetEnvironment, dataset: str, fold: int, trainer: str, stamp: str
) -> Path | None:
    """Another partition's fold folder holding a finished training with this stamp, if any."""
    own = fold_folder(env, dataset, fold, trainer)
    for folder in sorted(env.results.glob(f"Dataset*/{trainer}/fold_{fold}")):
        if folder != own and completed_result(folder, stamp) is not None:
            return folder
    return None


def adopt_twin(
    env: NnunetEnvironment, dataset: str, fold: int, settings: TrainingSettings, twin: Path
) -> FoldResult:
    """This fold as the twin's training: its final checkpoint (hard-linked where possible), curve
    and result, and this dataset's plans and dataset.json beside them for the predictor."""
    folder = fold_folder(env, dataset, fold, trainer_folder(settings))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stored = read_result(twin / RESULT_FILE)
    _link_or_copy(twin / FINAL_CHECKPOINT, folder / FINAL_CHECKPOINT)
    if stored.recipe:
        store_recipe(folder, stored.recipe)
    preprocessed = env.preprocessed / dataset
    shutil.copyfile(preprocessed / plans_file_name(settings), folder.parent / "plans.json")
    shutil.copyfile(preprocessed / "dataset.json", folder.parent / "dataset.json")
    (folder / STAMP_FILE).write_text(stored.stamp)
    result = replace(
        stored,
        checkpoint=str(folder / FINAL_CHECKPOINT),
        trained_by=stored.trained_by or twin.parents[1].name,
        skipped=True,
    )
    store_result(folder, result)
    return result


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
