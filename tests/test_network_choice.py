"""Where a model lives and what network it is: trainer folders named by the recipe, the network
(configuration, planner) as a design choice, and tiny real trainings of 3d_fullres and of a
residual-encoder plan through nnU-Net, predicted from their own trainer folders."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from cmrbias_dagster.lib.design.fields import StudyDesignError
from cmrbias_dagster.lib.design.partition import study_partition
from cmrbias_dagster.lib.design.settings import NetworkSettings, PlanEdits, TrainingSettings
from cmrbias_dagster.lib.design.study import parse_study_design
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.nnunet.dataset import Case, NnunetEnvironment
from cmrbias_dagster.lib.nnunet.fold_records import (
    LEGACY_TRAINER_FOLDER,
    STAMP_FILE,
    fold_folder,
    move_legacy_fold,
    recipe_tag,
    trainer_folder,
)
from cmrbias_dagster.lib.nnunet.inference import predict_ensemble
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.plan_edits import apply_plan_edits
from cmrbias_dagster.lib.nnunet.plans import plan_and_preprocess
from cmrbias_dagster.lib.nnunet.training import train_fold
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE

DESIGN = load_study_design(DEFAULT_STUDY_FILE)
RESENC_M = NetworkSettings(planner="nnUNetPlannerResEncM")
FULLRES = NetworkSettings(configuration="3d_fullres")


def raw_design() -> dict:
    return yaml.safe_load(DEFAULT_STUDY_FILE.read_text())


def test_the_stock_recipe_keeps_nnunets_folder_and_others_say_how_they_trained() -> None:
    assert trainer_folder(DESIGN.profile("paper").training) == LEGACY_TRAINER_FOLDER
    assert trainer_folder(DESIGN.profile("quick").training) == (
        "nnUNetTrainerCmrbias_96x25_adamw0.01_cpubf16__nnUNetPlans__2d"
    )
    assert trainer_folder(DESIGN.profile("tiny").training) == (
        "nnUNetTrainerCmrbias_3x2__nnUNetPlans__2d"
    )
    resenc_3d = NetworkSettings("3d_fullres", "nnUNetPlannerResEncL")
    assert trainer_folder(TrainingSettings(network=resenc_3d)) == (
        "nnUNetTrainer__nnUNetResEncUNetLPlans__3d_fullres"
    )
    # Explicit nnU-Net defaults are the stock recipe; each departure shows in the tag.
    assert recipe_tag(TrainingSettings(initial_lr=0.01, seed=7, threads=1)) == ""
    assert recipe_tag(TrainingSettings(initial_lr=0.003)) == "sgd0.003"
    assert recipe_tag(TrainingSettings(augmentation="seg_order0")) == "segorder0"


def test_the_network_enters_the_stamp_only_when_chosen() -> None:
    quick = DESIGN.profile("quick").training
    assert quick.network.is_default
    # The fingerprint every quick fold was stamped with before the network was a choice.
    assert quick.fingerprint() == "dbf9d0c36a472ff7"
    fingerprints = {replace(quick, network=n).fingerprint() for n in (RESENC_M, FULLRES)}
    assert len(fingerprints) == 2 and quick.fingerprint() not in fingerprints


def test_an_experiment_chooses_its_network_and_others_keep_the_profiles() -> None:
    raw = raw_design()
    raw["experiments"]["sex_resenc"] = {
        **raw["experiments"]["sex"],
        "varies": "sex",
        "network": {"planner": "nnUNetPlannerResEncM"},
    }
    raw["profiles"]["tiny"]["network"] = {"configuration": "3d_fullres"}
    design = parse_study_design(raw, "study.yaml")
    for profile, key, network in (
        ("quick", "sex_resenc|50", RESENC_M),
        ("quick", "sex|50", NetworkSettings()),
        ("tiny", "sex|50", FULLRES),
        ("tiny", "sex_resenc|50", RESENC_M),
    ):
        assert study_partition(design, design.profile(profile), key).training.network == network


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["experiments"]["sex"].update(network={"planner": "ResEncM"}),
            "experiment 'sex': block 'network': key 'planner' must be one of",
        ),
        (
            lambda r: r["experiments"]["sex"].update(network={"configuration": "3d"}),
            "experiment 'sex': block 'network': key 'configuration' must be one of",
        ),
        (
            lambda r: r["profiles"]["tiny"].update(network={"layers": 3}),
            "profile 'tiny': block 'network': unknown network setting",
        ),
        (
            lambda r: r["profiles"]["tiny"]["training"].update(
                network={"planner": RESENC_M.planner}
            ),
            "block 'training' must not hold 'network'",
        ),
        (
            lambda r: (
                r["profiles"]["tiny"]["nnunet"].update(patch_size=[48, 48]),
                r["experiments"]["sex"].update(network={"configuration": "3d_fullres"}),
            ),
            "experiment 'sex': field 'network' (profile 'tiny'): configuration '3d_fullres' "
            "needs a patch_size of 3 axes",
        ),
    ],
)
def test_a_bad_network_choice_names_the_entry_and_field(edit, message: str) -> None:
    raw = raw_design()
    edit(raw)
    with pytest.raises(StudyDesignError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_study_design(raw, "study.yaml")


def test_plan_edits_cut_a_residual_encoders_stages() -> None:
    arch = {
        "n_stages": 4,
        "features_per_stage": [32, 64, 128, 256],
        "kernel_sizes": [[3, 3]] * 4,
        "strides": [[1, 1], [2, 2], [2, 2], [2, 2]],
        "n_blocks_per_stage": [1, 3, 4, 6],
        "n_conv_per_stage_decoder": [1, 1, 1],
    }
    config = {"patch_size": [64, 64], "batch_size": 12, "architecture": {"arch_kwargs": arch}}
    plans = {"configurations": {"2d": config}}
    edited = apply_plan_edits(plans, PlanEdits(batch_size=4, features_per_stage=(8, 16, 32)))
    cut = edited["configurations"]["2d"]["architecture"]["arch_kwargs"]
    assert cut["n_blocks_per_stage"] == [1, 3, 4] and cut["n_conv_per_stage_decoder"] == [1, 1]
    assert "n_conv_per_stage" not in cut and edited["configurations"]["2d"]["batch_size"] == 4
    with pytest.raises(ValueError, match="for configuration '2d' and stages can only be removed"):
        apply_plan_edits(plans, PlanEdits(features_per_stage=(8, 16, 32, 64, 128)))


def legacy_fold(results: Path, dataset: str, fold: int, stamp: str) -> Path:
    folder = results / dataset / LEGACY_TRAINER_FOLDER / f"fold_{fold}"
    folder.mkdir(parents=True)
    (folder / STAMP_FILE).write_text(stamp)
    (folder / "checkpoint_final.pth").write_bytes(b"weights")
    for name in ("plans.json", "dataset.json"):
        (folder.parent / name).write_text(name)
    return folder


def test_a_fold_under_the_old_folder_moves_once_when_its_stamp_is_this_trainings(
    tmp_path: Path,
) -> None:
    env = NnunetEnvironment(tmp_path / "raw", tmp_path / "pre", tmp_path / "results")
    quick = trainer_folder(DESIGN.profile("quick").training)
    legacy_fold(env.results, "D", 0, "stamp-a")
    legacy_fold(env.results, "D", 1, "stamp-b")
    assert not move_legacy_fold(env, "D", 0, quick, "another stamp")
    assert move_legacy_fold(env, "D", 0, quick, "stamp-a")
    moved = fold_folder(env, "D", 0, quick)
    assert (moved / "checkpoint_final.pth").read_bytes() == b"weights"
    assert (moved.parent / "plans.json").read_text() == "plans.json"
    assert not move_legacy_fold(env, "D", 0, quick, "stamp-a")  # once: the old one is gone
    legacy = env.results / "D" / LEGACY_TRAINER_FOLDER
    assert sorted(p.name for p in legacy.iterdir()) == ["dataset.json", "fold_1", "plans.json"]
    # The stock recipe's folder is the old one: nothing moves.
    assert not move_legacy_fold(env, "D", 1, LEGACY_TRAINER_FOLDER, "stamp-b")
    assert move_legacy_fold(env, "D", 1, quick, "stamp-b")
    assert not legacy.exists()


@pytest.fixture(scope="module")
def tiny_dataset(planned_study, tmp_path_factory: pytest.TempPathFactory):
    """The planned partition's raw dataset, splits and two cases, in a tree of its own."""
    study = planned_study.resources["study"]
    partition = study.partition("race_black|25")
    source = study.nnunet_environment()
    root = tmp_path_factory.mktemp("networks")
    shutil.copytree(source.raw / partition.dataset, root / "raw" / partition.dataset)
    splits = json.loads((source.preprocessed / partition.dataset / "splits_final.json").read_text())
    raw = root / "raw" / partition.dataset
    cases = [
        Case(
            case_id,
            raw / "imagesTr" / f"{case_id}_0000.nii.gz",
            raw / "labelsTr" / f"{case_id}.nii.gz",
        )
        for case_id in splits[0]["val"][:2]
    ]
    return root, partition, splits, cases


@pytest.mark.parametrize("network", [FULLRES, RESENC_M], ids=["3d_fullres", "2d_resenc_m"])
def test_each_network_trains_and_predicts_through_nnunet(tiny_dataset, network) -> None:
    """Plan with the network's planner, train one tiny fold of its configuration, predict from
    its trainer folder: the checkpoint names the configuration the predictor builds."""
    import torch

    root, partition, splits, cases = tiny_dataset
    name = f"{network.configuration}_{network.planner}"
    env = NnunetEnvironment(root / "raw", root / f"pre_{name}", root / f"results_{name}")
    edits = DESIGN.profile("tiny").nnunet
    run_in_fresh_process(
        plan_and_preprocess, partition.dataset_id, env, edits, splits, network=network
    )
    settings = replace(
        partition.training,
        network=network,
        epochs=1,
        iterations_per_epoch=2,
        val_iterations_per_epoch=1,
        final_validation=False,
        cpu_bf16=True,  # channels-last of the configuration's rank, on a CPU with native bf16
    )
    result = run_in_fresh_process(train_fold, env, partition.dataset, 0, settings, "cpu")
    folder = fold_folder(env, partition.dataset, 0, trainer_folder(settings))
    assert Path(result.checkpoint) == folder / "checkpoint_final.pth"
    assert folder.parent.name.endswith(f"__{network.plans_identifier}__{network.configuration}")
    assert sorted(p.name for p in (env.results / partition.dataset).iterdir()) == [
        folder.parent.name
    ]
    assert result.recipe["network"] == {
        "configuration": network.configuration,
        "planner": network.planner,
    }
    checkpoint = torch.load(folder / "checkpoint_final.pth", weights_only=False)
    assert checkpoint["init_args"]["configuration"] == network.configuration
    assert checkpoint["init_args"]["plans"]["plans_name"] == network.plans_identifier
    arch = checkpoint["init_args"]["plans"]["configurations"][network.configuration]
    assert arch["architecture"]["arch_kwargs"]["features_per_stage"] == list(
        edits.features_per_stage
    )
    assert ("n_blocks_per_stage" in arch["architecture"]["arch_kwargs"]) == (
        network.planner != "default"
    )
    predictions = run_in_fresh_process(
        predict_ensemble,
        env,
        partition.dataset,
        [0],
        cases,
        root / f"predicted_{name}",
        DESIGN.profile("tiny").prediction,
        "cpu",
        trainer_folder(settings),
    )
    assert [p.case_id for p in predictions] == [c.case_id for c in cases]
    assert all(Path(p.path).is_file() for p in predictions)
    # The same fold again is skipped: its stamp holds the network.
    again = run_in_fresh_process(train_fold, env, partition.dataset, 0, settings, "cpu")
    assert again.skipped and again.stamp == result.stamp
