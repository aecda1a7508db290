"""The mitigations on a real nnUNetTrainer: the tiny study's race_black|25 partition (fold 0
trains on 1 black and 3 white subjects: 2 and 6 cases), tiny network, CPU."""

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import torch

from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.nnunet.mitigation import apply_mitigation, case_groups
from cmrbias_dagster.lib.nnunet.mitigation.error_bound import scale_error_bounds
from cmrbias_dagster.lib.nnunet.mitigation.group_dro import WEIGHTS_SUFFIX, train_with_group_dro
from cmrbias_dagster.lib.nnunet.mitigation.group_weights import dro_update, error_bound_weights
from cmrbias_dagster.lib.nnunet.mitigation.hooks import (
    average_sample_losses,
    oversample_groups,
    per_sample_losses,
    reweight_losses,
)
from cmrbias_dagster.lib.nnunet.trainer_hooks import train_in_bf16
from cmrbias_dagster.resources import StudyResource

DATASET = "Dataset511_race_black_25"


@pytest.fixture(scope="module")
def groups(planned_study) -> dict[str, str]:
    """Case id -> race of every subject of the planned partition's training split."""
    with duckdb.connect(str(planned_study.work / "cmrbias_tiny.duckdb"), read_only=True) as db:
        split = db.sql("select * from cmrbias.training_split").pl()
    return case_groups(split.filter(experiment="race_black", ratio=25))


@pytest.fixture
def build_trainer(planned_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A stock nnUNetTrainer of fold 0, one epoch of two iterations, results under tmp_path."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    study: StudyResource = planned_study.resources["study"]
    env = study.nnunet_environment()
    monkeypatch.setenv("nnUNet_raw", str(env.raw))
    monkeypatch.setenv("nnUNet_preprocessed", str(env.preprocessed))
    monkeypatch.setenv("nnUNet_results", str(tmp_path))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    np.random.seed(0)
    torch.manual_seed(0)

    def build() -> nnUNetTrainer:
        plans = json.loads((env.preprocessed / DATASET / "nnUNetPlans.json").read_text())
        dataset_json = json.loads((env.preprocessed / DATASET / "dataset.json").read_text())
        plans["continue_training"] = False
        trainer = nnUNetTrainer(plans, "2d", 0, dataset_json, torch.device("cpu"))
        trainer.num_epochs, trainer.num_iterations_per_epoch = 1, 2
        trainer.num_val_iterations_per_epoch, trainer.save_every = 1, 1
        return trainer

    return build


def black_share(cases: list[str], groups: dict[str, str]) -> float:
    return float(np.mean([groups[case] == "black" for case in cases]))


def sample_losses(trainer, batch: dict) -> torch.Tensor:
    """nnU-Net's loss of each sample under the current network (as the train step sees it)."""
    with torch.no_grad():
        return per_sample_losses(trainer.loss, trainer.network(batch["data"]), batch["target"])


def test_oversampling_draws_each_group_equally_often(build_trainer, groups) -> None:
    plain, balanced = build_trainer(), build_trainer()
    oversample_groups(balanced, groups)
    shares = []
    for trainer in (plain, balanced):
        trainer.on_train_start()
        loader = trainer.dataloader_train.data_loader
        assert black_share(list(loader.indices), groups) == 0.25  # 2 of the fold's 8 cases
        shares.append(black_share([k for _ in range(2000) for k in loader.get_indices()], groups))
        assert trainer.dataloader_val.data_loader.sampling_probabilities is None
    assert abs(shares[0] - 0.25) < 0.03 and abs(shares[1] - 0.5) < 0.03


def test_reweighting_weighs_each_sample_by_its_groups_inverse_frequency(
    build_trainer, groups
) -> None:
    trainer = build_trainer()
    weights = reweight_losses(trainer, groups)
    trainer.on_train_start()
    assert {groups[case]: weight for case, weight in weights.items()} == {
        "black": pytest.approx(2.0),  # 8 cases / (2 groups x 2 black cases)
        "white": pytest.approx(2 / 3),
    }
    batch = next(trainer.dataloader_train)
    losses = sample_losses(trainer, batch)
    factors = torch.tensor([weights[str(key)] for key in batch["keys"]])
    loss = float(trainer.train_step(batch)["loss"])
    assert loss == pytest.approx(float((factors * losses).mean()), rel=1e-4)
    assert loss != pytest.approx(float(losses.mean()), rel=1e-3)


def test_the_per_sample_control_averages_each_cases_own_loss(build_trainer) -> None:
    """Reweighting's loss with every weight 1: the mean of the per-sample losses, which is not
    nnU-Net's batch loss (one Dice over the whole batch)."""
    trainer = build_trainer()
    average_sample_losses(trainer)
    trainer.on_train_start()
    batch = next(trainer.dataloader_train)
    losses = sample_losses(trainer, batch)
    with torch.no_grad():
        data = batch["data"].to(trainer.device)
        target = [t.to(trainer.device) for t in batch["target"]]
        batch_loss = float(trainer.loss(trainer.network(data), target))
    loss = float(trainer.train_step(batch)["loss"])
    assert loss == pytest.approx(float(losses.mean()), rel=1e-5)
    # Small on an untrained network, whose loss is mostly cross-entropy, but above the tolerance.
    assert abs(loss - batch_loss) > 1e-4


def test_group_dro_shifts_weight_to_the_group_with_the_higher_loss(build_trainer, groups) -> None:
    trainer = build_trainer()
    dro = train_with_group_dro(trainer, groups, step=1.0)
    trainer.on_train_start()
    assert dro.weights == {"black": 0.5, "white": 0.5}
    batch = next(trainer.dataloader_train)
    while len({groups[str(key)] for key in batch["keys"]}) < 2:
        batch = next(trainer.dataloader_train)
    batch_groups = [groups[str(key)] for key in batch["keys"]]
    losses = dict(zip(batch_groups, sample_losses(trainer, batch).tolist(), strict=True))
    loss = float(trainer.train_step(batch)["loss"])
    expected = dro_update({"black": 0.5, "white": 0.5}, losses, 1.0)
    assert dro.weights == pytest.approx(expected, rel=1e-4)
    higher = max(losses, key=losses.__getitem__)
    assert dro.weights[higher] > 0.5
    assert loss == pytest.approx(sum(expected[g] * losses[g] for g in losses), rel=1e-4)


def test_group_dro_resumes_with_the_weights_it_saved(build_trainer, groups) -> None:
    trainer = build_trainer()
    saved = {"black": 0.7, "white": 0.3}
    Path(trainer.output_folder).mkdir(parents=True, exist_ok=True)
    (Path(trainer.output_folder) / f"checkpoint_latest.pth{WEIGHTS_SUFFIX}").write_text(
        json.dumps(saved)
    )
    trainer.current_epoch = 1  # as load_checkpoint leaves a resumed trainer
    dro = train_with_group_dro(trainer, groups, step=0.01)
    trainer.on_train_start()
    assert dro.weights == saved


def test_group_dro_with_balanced_sampling_draws_groups_equally_and_trains_on_q(
    build_trainer, groups
) -> None:
    """The `balanced_sampling` option (Sagawa et al.'s pairing): oversampling's loader and Group
    DRO's loss together on one trainer."""
    trainer = build_trainer()
    mitigation = Mitigation("group_dro", group_dro_step=1.0, balanced_sampling=True)
    apply_mitigation(trainer, mitigation, groups)
    trainer.on_train_start()
    loader = trainer.dataloader_train.data_loader
    drawn = [k for _ in range(2000) for k in loader.get_indices()]
    assert abs(black_share(drawn, groups) - 0.5) < 0.03  # 0.25 without the sampler
    assert trainer.dataloader_val.data_loader.sampling_probabilities is None
    batch = next(trainer.dataloader_train)
    while len({groups[str(key)] for key in batch["keys"]}) < 2:
        batch = next(trainer.dataloader_train)
    batch_groups = [groups[str(key)] for key in batch["keys"]]
    per_sample = sample_losses(trainer, batch)
    by_group = {
        group: float(per_sample[[g == group for g in batch_groups]].mean())
        for group in set(batch_groups)
    }
    expected = dro_update({"black": 0.5, "white": 0.5}, by_group, 1.0)
    loss = float(trainer.train_step(batch)["loss"])
    assert loss == pytest.approx(sum(expected[g] * by_group[g] for g in by_group), rel=1e-4)
    # One step of q moves the loss off the plain mean by little, but above the tolerance above.
    assert abs(loss - float(per_sample.mean())) > 1e-3


@pytest.mark.parametrize(
    "mitigation",
    [
        Mitigation("oversampling"),
        Mitigation("reweighting"),
        Mitigation("group_dro", group_dro_step=1.0),
        Mitigation("group_dro", group_dro_step=1.0, balanced_sampling=True),
        Mitigation("per_sample_loss"),
        Mitigation("error_bound_scaling"),
    ],
    ids=[
        "oversampling",
        "reweighting",
        "group_dro",
        "group_dro_balanced",
        "per_sample_loss",
        "error_bound_scaling",
    ],
)
def test_a_tiny_training_runs_with_each_mitigation(
    build_trainer, groups, mitigation: Mitigation
) -> None:
    trainer = build_trainer()
    apply_mitigation(trainer, mitigation, groups)
    train_in_bf16(trainer)  # applied after: the mitigation must still hold the train step
    trainer.run_training()
    folder = Path(trainer.output_folder)
    assert (folder / "checkpoint_final.pth").is_file()
    assert np.isfinite(trainer.logger.get_value("train_losses", None)).all()
    if mitigation.strategy == "group_dro":
        weights = json.loads((folder / f"checkpoint_final.pth{WEIGHTS_SUFFIX}").read_text())
        assert sorted(weights) == ["black", "white"] and sum(weights.values()) == pytest.approx(1)
        assert weights["black"] != pytest.approx(0.5)
        assert "group DRO weights" in next(folder.glob("training_log_*.txt")).read_text()


def test_cropping_with_oversampling_draws_each_group_equally_often(build_trainer, groups) -> None:
    """The cropped stage's trainer of `[cropping, oversampling]`: cropping changes its dataset
    (test_mitigation_combined), the combination's oversampling its loader."""
    trainer = build_trainer()
    apply_mitigation(trainer, Mitigation(("cropping", "oversampling")), groups)
    trainer.on_train_start()
    drawn = [k for _ in range(2000) for k in trainer.dataloader_train.data_loader.get_indices()]
    assert abs(black_share(drawn, groups) - 0.5) < 0.03  # 0.25 without the sampler


def test_error_bound_scaling_trains_on_scaled_dice_with_fairseg_weights(
    build_trainer, groups
) -> None:
    """The batch's loss is the mean of its cases' losses with the Dice on w_g x softmax, w_g from
    the groups' errors (nnU-Net's loss + 1); the worse-off group gets the smaller weight."""
    trainer = build_trainer()
    febs = scale_error_bounds(trainer, groups, gamma=1.0)
    trainer.on_train_start()
    batch = next(trainer.dataloader_train)
    while len({groups[str(key)] for key in batch["keys"]}) < 2:
        batch = next(trainer.dataloader_train)
    batch_groups = [groups[str(key)] for key in batch["keys"]]
    per_sample = sample_losses(trainer, batch)
    errors = {
        g: float(per_sample[[h == g for h in batch_groups]].mean()) + 1 for g in set(batch_groups)
    }
    worse = max(errors, key=errors.get)
    loss = float(trainer.train_step(batch)["loss"])
    expected = error_bound_weights(errors, 1.0)
    assert febs.weights == pytest.approx(expected, rel=1e-4)
    assert febs.weights[worse] < febs.weights[min(errors, key=errors.get)]
    # Probabilities scaled below 1 lower every Dice: the loss rises above the plain mean.
    assert loss > float(per_sample.mean()) + 1e-3
