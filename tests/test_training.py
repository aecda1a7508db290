"""Fold checkpoints: real nnU-Net training on CPU (tiny settings), skip when unchanged, resume."""

import base64
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
import torch
import yaml
from PIL import Image

from cmrbias_dagster.lib.nnunet.fold_records import fold_folder, trainer_folder
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.training import train_fold
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, StudyResource, build_resources
from tests.conftest import FOLD_ASSETS, PLANNED_PARTITION, TINY_TRAINER

DATASET = "Dataset511_race_black_25"


def materialize_fold(planned_study, fold: int, **resource_overrides) -> dg.ExecuteInProcessResult:
    resources = {**planned_study.resources, **resource_overrides}
    return dg.materialize(
        [*planned_study.assets, *FOLD_ASSETS],
        selection=[f"fold_{fold}_checkpoint"],
        partition_key=PLANNED_PARTITION,
        resources=resources,
        instance=planned_study.instance,
    )


@pytest.fixture(scope="module")
def trained(trained_study):
    return trained_study


def test_each_fold_trains_and_reports(planned_study, trained) -> None:
    for fold, result in enumerate(trained):
        metadata = result.asset_materializations_for_node(f"fold_{fold}_checkpoint")[0].metadata
        assert metadata["epochs_run"].value == 3 and metadata["resumed_from_epoch"].value == 0
        assert metadata["device"].value == "cpu" and metadata["retrained"].value is True
        assert 0.0 <= metadata["validation_dice_mean"].value <= 1.0
        assert {"pseudo_dice_LVBP", "validation_dice_RVBP", "final_val_loss"} <= set(metadata)
        recipe = metadata["recipe"].value
        assert (recipe["precision"], recipe["device_type"], recipe["epochs"]) == ("fp32", "cpu", 3)
        curve = metadata["training_curve"].value
        assert curve.startswith("![training curve](data:image/png;base64,")
        png = base64.b64decode(curve.split(",", 1)[1].rstrip(")"))
        assert Image.open(io.BytesIO(png)).size == (600, 360) and len(png) < 60_000
        folder = fold_folder_of(planned_study, fold)
        kept = sorted(p.name for p in folder.glob("*.pth"))
        assert kept == ["checkpoint_final.pth"]
        assert not (folder / "progress.png").exists(), "nnU-Net's 3000x5400 curve is not drawn"
        assert metadata["checkpoint"].value == str(folder / "checkpoint_final.pth")


def run_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The user log lines of a run's event log, oldest first."""
    return [entry.user_message for entry in instance.all_logs(run_id) if not entry.is_dagster_event]


def test_each_epoch_reaches_the_event_log_while_the_fold_trains(planned_study, trained) -> None:
    """The fresh training process logs every epoch over Dagster Pipes, before the step reports
    the trained fold (tiny profile: 3 epochs)."""
    for fold, result in enumerate(trained):
        messages = run_messages(planned_study.instance, result.run_id)
        epochs = [m for m in messages if m.startswith(f"fold {fold} epoch ")]
        assert [m.split(":")[0] for m in epochs] == [f"fold {fold} epoch {e}/3" for e in (1, 2, 3)]
        for line in epochs:
            numbers = dict(pair.split("=") for pair in line.split(": ", 1)[1].split())
            assert set(numbers) == {
                "train_loss",
                "val_loss",
                "pseudo_dice_LVBP",
                "pseudo_dice_LVM",
                "pseudo_dice_RVBP",
                "ema_pseudo_dice",
                "epoch_seconds",
                "eta_seconds",
            }
            assert all(float(value) >= 0 for value in numbers.values())
        assert epochs[-1].endswith("eta_seconds=0")
        trained_line = next(m for m in messages if m.startswith(f"fold {fold}: trained"))
        assert messages.index(epochs[-1]) < messages.index(trained_line)
        warnings = [e for e in planned_study.instance.all_logs(result.run_id) if e.level >= 30]
        assert not warnings, [e.user_message for e in warnings]


def fold_folder_of(planned_study, fold: int) -> Path:
    study: StudyResource = planned_study.resources["study"]

    trainer = trainer_folder(study.training_settings())
    return fold_folder(study.nnunet_environment(), DATASET, fold, trainer)


def test_unchanged_fold_is_not_retrained(planned_study, trained) -> None:
    first = trained[0].asset_materializations_for_node("fold_0_checkpoint")[0]
    checkpoint = fold_folder_of(planned_study, 0) / "checkpoint_final.pth"
    modified = checkpoint.stat().st_mtime_ns
    again = materialize_fold(planned_study, 0).asset_materializations_for_node("fold_0_checkpoint")[
        0
    ]
    assert again.metadata["retrained"].value is False
    curve = again.metadata["training_curve"].value  # drawn again from the stored curves
    png = base64.b64decode(curve.split(",", 1)[1].rstrip(")"))
    assert Image.open(io.BytesIO(png)).size == (600, 360)
    assert again.tags["dagster/data_version"] == first.tags["dagster/data_version"]
    assert checkpoint.stat().st_mtime_ns == modified


def latest_epoch(folder: Path) -> int | None:
    try:
        return torch.load(folder / "checkpoint_latest.pth", weights_only=False)["current_epoch"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return None


def test_interrupted_fold_resumes_from_its_latest_checkpoint(planned_study, tmp_path: Path) -> None:
    design = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())
    design["profiles"]["tiny"]["training"].update(epochs=12, save_every=1)
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(design))
    work = tmp_path / "work"
    for part in ("raw", "preprocessed"):
        shutil.copytree(
            planned_study.work / "tiny" / "nnunet" / part, work / "tiny" / "nnunet" / part
        )
    study = StudyResource(study_file=str(study_file), profile="tiny", work_dir=str(work))
    folder = fold_folder_of(planned_study._replace(resources={"study": study}), 1)
    trainer = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_TRAINING, str(study_file), str(work)],
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while (latest_epoch(folder) or 0) < 2 and trainer.poll() is None:
        assert time.monotonic() < deadline, "training never reached epoch 2"
        time.sleep(0.2)
    os.killpg(trainer.pid, signal.SIGKILL)
    trainer.wait()
    reached = latest_epoch(folder)
    assert reached is not None and 2 <= reached < 12, "killed after the last checkpoint"
    result = materialize_fold(planned_study, 1, study=study)
    metadata = result.asset_materializations_for_node("fold_1_checkpoint")[0].metadata
    assert metadata["resumed_from_epoch"].value == reached
    assert metadata["epochs_run"].value == 12


INTERRUPTED_TRAINING = """
import sys
from cmrbias_dagster.lib.nnunet.training import train_fold
from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.resources import StudyResource
study = StudyResource(study_file=sys.argv[1], profile="tiny", work_dir=sys.argv[2])
settings = study.training_settings()
train_fold(study.nnunet_environment(), "Dataset511_race_black_25", 1, settings, "cpu")
"""


def test_cpu_slots_follow_the_profiles_parallel_runs(tmp_path: Path) -> None:
    design = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())
    design["profiles"]["tiny"]["parallel_runs"] = 3
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(design))
    three = build_resources(profile="tiny", work_dir=tmp_path, study_file=study_file)
    assert three["training"].cpu_slots == 3
    del design["profiles"]["tiny"]["parallel_runs"]
    study_file.write_text(yaml.safe_dump(design))
    default = build_resources(profile="tiny", work_dir=tmp_path, study_file=study_file)
    assert default["training"].cpu_slots == 1


def materialize_partition_fold_0(planned_study, partition: str) -> dg.AssetMaterialization:
    """Split, folds, nnU-Net data and plans of `partition`, then its fold 0."""
    result = dg.materialize(
        [*planned_study.assets, *FOLD_ASSETS],
        selection=[
            "training_split",
            "cv_folds",
            "nnunet_dataset",
            "nnunet_plans",
            "fold_0_checkpoint",
        ],
        partition_key=partition,
        resources=planned_study.resources,
        instance=planned_study.instance,
    )
    return result.asset_materializations_for_node("fold_0_checkpoint")[0]


def test_a_partition_that_drew_the_same_training_set_reuses_the_training(planned_study) -> None:
    """`race_black|0` and `race_asian|0` both train on the same white subjects: the second fold
    asset adopts the first's training (no training of its own) and says which partition it was."""
    dg.materialize(
        planned_study.assets,
        selection=["test_set"],
        partition_key="race_asian",
        resources=planned_study.resources,
        instance=planned_study.instance,
    )
    trained = materialize_partition_fold_0(planned_study, "race_black|0")
    adopted = materialize_partition_fold_0(planned_study, "race_asian|0")
    study: StudyResource = planned_study.resources["study"]
    first, second = (study.partition(key) for key in ("race_black|0", "race_asian|0"))
    assert trained.metadata["trained_by"].value == ""
    assert adopted.metadata["trained_by"].value == first.dataset
    assert adopted.metadata["retrained"].value is False
    assert adopted.tags["dagster/data_version"] == trained.tags["dagster/data_version"]
    env = study.nnunet_environment()
    checkpoints = [
        fold_folder(env, p.dataset, 0, TINY_TRAINER) / "checkpoint_final.pth"
        for p in (first, second)
    ]
    assert checkpoints[0].stat().st_ino == checkpoints[1].stat().st_ino
    plans = (fold_folder(env, second.dataset, 0, TINY_TRAINER).parent / "plans.json").read_text()
    assert second.dataset in plans


def test_bf16_steps_and_adamw_train_a_real_fold(planned_study, tmp_path: Path) -> None:
    """`cpu_bf16` trains in bf16 where the CPU has it (fp32 elsewhere), `optimizer: adamw` with
    `initial_lr` builds nnU-Net's AdamW (amsgrad) at that rate in torch's fused implementation;
    the fold trains and stores both."""
    from dataclasses import replace

    from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
    from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
    from cmrbias_dagster.lib.nnunet.training import train_fold

    source = planned_study.work / "tiny" / "nnunet"
    env = NnunetEnvironment(tmp_path / "raw", tmp_path / "preprocessed", tmp_path / "results")
    for part in ("raw", "preprocessed"):
        shutil.copytree(source / part, tmp_path / part)
    study: StudyResource = planned_study.resources["study"]
    settings = replace(
        study.settings().training, cpu_bf16=True, optimizer="adamw", initial_lr=0.003
    )
    result = run_in_fresh_process(train_fold, env, DATASET, 0, settings, "cpu")
    assert result.precision == ("bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32")
    assert len(result.train_losses) == settings.epochs
    checkpoint = torch.load(result.checkpoint, weights_only=False)
    group = checkpoint["optimizer_state"]["param_groups"][0]
    assert group["amsgrad"] is True and group["initial_lr"] == 0.003 and group["fused"] is True


def test_a_seeded_fold_trains_the_same_twice_on_the_cpu(planned_study, tmp_path: Path) -> None:
    """The fold assets seed training from the design: two trainings of one fold with one seed, in
    separate results folders, give the same curve and the same weights."""
    study: StudyResource = planned_study.resources["study"]
    env, dataset = study.nnunet_environment(), study.partition(PLANNED_PARTITION).dataset
    settings = study.training_settings()
    results = []
    for copy in ("first", "second"):
        copy_env = replace(env, results=tmp_path / copy)
        results.append(run_in_fresh_process(train_fold, copy_env, dataset, 0, settings, "cpu"))
    first, second = results
    assert first.stamp == second.stamp and first.train_losses == second.train_losses
    weights = [torch.load(r.checkpoint, weights_only=False)["network_weights"] for r in results]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


def test_a_checkpoint_killed_mid_write_leaves_the_previous_one(tmp_path: Path) -> None:
    """A save that dies after writing part of its file (as a SIGKILL would) leaves the previous
    checkpoint whole; checkpoint_best.pth is still never written."""
    from types import SimpleNamespace

    from cmrbias_dagster.lib.nnunet.trainer_setup import (
        _skip_discarded_work,
        write_checkpoints_atomically,
    )

    def save(filename: str) -> None:
        Path(filename).write_text("half a checkpoint")
        if "killed" in saves:
            raise KeyboardInterrupt
        Path(filename).write_text(f"epoch {len(saves)}")

    saves: list[str] = []
    trainer = SimpleNamespace(save_checkpoint=save, logger=SimpleNamespace())
    write_checkpoints_atomically(trainer)
    _skip_discarded_work(trainer)
    latest = tmp_path / "checkpoint_latest.pth"
    trainer.save_checkpoint(str(latest))
    saves.append("killed")
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint(str(latest))
    assert latest.read_text() == "epoch 0"
    trainer.save_checkpoint(str(tmp_path / "checkpoint_best.pth"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_latest.pth",
        "checkpoint_latest.pth.partial",
    ]
