"""nnU-Net raw dataset, planning and preprocessing: real nnunetv2 runs on a 12-case toy cohort."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cmrbias_dagster.lib.design.partition import dataset_name
from cmrbias_dagster.lib.design.settings import PlanEdits
from cmrbias_dagster.lib.nnunet.dataset import (
    LABELS,
    Case,
    NnunetEnvironment,
    write_raw_dataset,
)
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.plan_edits import apply_plan_edits
from cmrbias_dagster.lib.nnunet.plans import dataset_fingerprint_summary, plan_and_preprocess
from cmrbias_dagster.lib.splits.folds import case_id
from tests.toy_cohort import SHAPE, demographics_rows, toy_labels, write_nifti, write_toy_cohort

NNUNET_VARIABLES = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_def_n_proc")
EDITS = PlanEdits(batch_size=2, features_per_stage=(8, 16, 32))


@dataclass(frozen=True)
class Planned:
    env: NnunetEnvironment
    name: str
    cases: list[Case]
    splits: list[dict[str, list[str]]]
    folder: Path


def toy_cases(cohort: Path) -> list[Case]:
    return [
        Case(
            case_id(subject, phase),
            cohort / subject / f"sa_{phase}.nii.gz",
            cohort / subject / f"label_sa_{phase}.nii.gz",
        )
        for subject in sorted(p.name for p in cohort.iterdir() if p.is_dir())
        for phase in ("ED", "ES")
    ]


def two_fold_splits(cases: list[Case]) -> list[dict[str, list[str]]]:
    ids = [case.case_id for case in cases]
    return [{"train": ids[4:], "val": ids[:4]}, {"train": ids[:4], "val": ids[4:]}]


def toy_env(root: Path) -> NnunetEnvironment:
    return NnunetEnvironment(root / "raw", root / "preprocessed", root / "results")


def plant_stale_folder(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "stale.txt").write_text("from an earlier run")
    (folder / ".complete").write_text("{}")


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Planned:
    """One real plan-and-preprocess run, over a stale folder left by an 'earlier run'."""
    root = tmp_path_factory.mktemp("nnunet")
    cases = toy_cases(write_toy_cohort(root / "cohort", demographics_rows(1)))
    env = toy_env(root)
    name = dataset_name(501, "toy", 50)
    splits = two_fold_splits(cases)
    plant_stale_folder(env.preprocessed / name)
    with pytest.MonkeyPatch.context() as patch:
        for variable in NNUNET_VARIABLES:
            patch.delenv(variable, raising=False)
        write_raw_dataset(cases, name, env)
        # In a fresh process, as the pipeline runs it: nnU-Net forks worker pools, and a fork of
        # this many-threaded test process can deadlock.
        folder = run_in_fresh_process(plan_and_preprocess, 501, env, EDITS, splits)
        yield Planned(env, name, cases, splits, folder)


def test_raw_dataset_layout(planned: Planned) -> None:
    raw = planned.env.raw / planned.name
    assert json.loads((raw / "dataset.json").read_text()) == {
        "channel_names": {"0": "cineMRI"},
        "labels": LABELS,
        "numTraining": 12,
        "file_ending": ".nii.gz",
        "overwrite_image_reader_writer": "NibabelIO",
    }
    for case in planned.cases:
        assert (raw / "imagesTr" / f"{case.case_id}_0000.nii.gz").read_bytes() == (
            case.image.read_bytes()
        )
        assert (raw / "labelsTr" / f"{case.case_id}.nii.gz").is_file()
    assert sorted(p.name for p in planned.env.raw.iterdir()) == [planned.name]


def test_plans_carry_the_edits(planned: Planned) -> None:
    plans = json.loads((planned.folder / "nnUNetPlans.json").read_text())
    config = plans["configurations"]["2d"]
    arch = config["architecture"]["arch_kwargs"]
    assert config["batch_size"] == 2
    assert arch["features_per_stage"] == [8, 16, 32]
    assert arch["n_stages"] == len(arch["kernel_sizes"]) == len(arch["strides"]) == 3
    assert len(arch["n_conv_per_stage_decoder"]) == 2


def test_splits_and_preprocessed_cases(planned: Planned) -> None:
    assert json.loads((planned.folder / "splits_final.json").read_text()) == planned.splits
    for case in planned.cases:
        for suffix in (".b2nd", "_seg.b2nd", ".pkl"):
            assert (planned.folder / "nnUNetPlans_2d" / f"{case.case_id}{suffix}").is_file()
        assert (planned.folder / "gt_segmentations" / f"{case.case_id}.nii.gz").is_file()


def test_rerun_replaces_the_stale_folder(planned: Planned) -> None:
    assert not (planned.folder / "stale.txt").exists()
    assert json.loads((planned.folder / ".complete").read_text())["n_cases"] == 12
    assert sorted(p.name for p in planned.env.preprocessed.iterdir()) == [planned.name]


def test_fingerprint_summary(planned: Planned) -> None:
    summary = dataset_fingerprint_summary(planned.folder)
    assert summary == {
        "plans_identifier": "nnUNetPlans",
        "n_cases": 12,
        "patch_size": [SHAPE[0], SHAPE[1]],
        "batch_size": 2,
        "n_stages": 3,
        "features_per_stage": [8, 16, 32],
        "median_shape": [float(SHAPE[0]), float(SHAPE[1])],
        "spacing": [2.0, 2.0],
    }


def test_trainer_builds_the_edited_network(
    planned: Planned, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    for variable in NNUNET_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    planned.env.activate()
    plans = json.loads((planned.folder / "nnUNetPlans.json").read_text())
    plans["continue_training"] = False
    dataset_json = json.loads((planned.folder / "dataset.json").read_text())
    trainer = nnUNetTrainer(plans, "2d", 0, dataset_json, torch.device("cpu"))
    trainer.initialize()
    assert trainer.batch_size == 2
    assert list(trainer.network.encoder.output_channels) == [8, 16, 32]


@pytest.mark.parametrize(
    ("splits", "message"),
    [
        ([{"train": ["NOPE_ED"], "val": []}], "NOPE_ED"),
        ([{"train": ["TOY001_ED"], "val": ["TOY001_ED"]}], "trains and validates on"),
        ([{"training": [], "val": []}], "train/val"),
    ],
)
def test_bad_splits_are_rejected_before_nnunet_runs(
    planned: Planned, splits: list[dict[str, list[str]]], message: str
) -> None:
    before = sorted(p.name for p in planned.folder.rglob("*"))
    with pytest.raises(ValueError, match=message):
        plan_and_preprocess(501, planned.env, EDITS, splits)
    assert sorted(p.name for p in planned.folder.rglob("*")) == before


def test_failed_preprocessing_keeps_the_previous_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in NNUNET_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    cases = toy_cases(write_toy_cohort(tmp_path / "cohort", demographics_rows(1)))
    write_nifti(cases[0].label, np.where(toy_labels(5.0) == 3, 7, toy_labels(5.0)))
    env = toy_env(tmp_path)
    name = dataset_name(502, "toy", 0)
    write_raw_dataset(cases, name, env)
    plant_stale_folder(env.preprocessed / name)
    with pytest.raises(RuntimeError, match="unexpected labels"):
        run_in_fresh_process(plan_and_preprocess, 502, env, EDITS, two_fold_splits(cases))
    assert (env.preprocessed / name / "stale.txt").is_file()
    assert sorted(p.name for p in env.preprocessed.iterdir()) == [name]


def test_missing_image_raises_before_writing(tmp_path: Path) -> None:
    cases = toy_cases(write_toy_cohort(tmp_path / "cohort", demographics_rows(1)))
    missing = tmp_path / "nowhere.nii.gz"
    cases[3] = Case(cases[3].case_id, missing, cases[3].label)
    env = toy_env(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"{cases[3].case_id}.*{re.escape(str(missing))}"):
        write_raw_dataset(cases, dataset_name(503, "toy", 0), env)
    assert not env.raw.exists()


def test_duplicate_case_ids_are_rejected(tmp_path: Path) -> None:
    cases = toy_cases(write_toy_cohort(tmp_path / "cohort", demographics_rows(1)))
    with pytest.raises(ValueError, match=cases[0].case_id):
        write_raw_dataset([*cases, cases[0]], dataset_name(503, "toy", 0), toy_env(tmp_path))


def test_rewriting_the_raw_dataset_replaces_it(tmp_path: Path) -> None:
    cases = toy_cases(write_toy_cohort(tmp_path / "cohort", demographics_rows(1)))
    env, name = toy_env(tmp_path), dataset_name(503, "toy", 0)
    first = write_raw_dataset(cases, name, env)
    (first / "stale.txt").write_text("old")
    second = write_raw_dataset(cases[:4], name, env)
    assert second == first and not (second / "stale.txt").exists()
    assert len(list((second / "imagesTr").iterdir())) == 4
    assert sorted(p.name for p in env.raw.iterdir()) == [name]


def toy_plans(n_stages: int = 4) -> dict:
    arch = {
        "n_stages": n_stages,
        "features_per_stage": [32 * 2**i for i in range(n_stages)],
        "kernel_sizes": [[3, 3]] * n_stages,
        "strides": [[1, 1]] + [[2, 2]] * (n_stages - 1),
        "n_conv_per_stage": [2] * n_stages,
        "n_conv_per_stage_decoder": [2] * (n_stages - 1),
        "conv_bias": True,
    }
    config = {"batch_size": 12, "patch_size": [64, 64], "architecture": {"arch_kwargs": arch}}
    return {"plans_name": "nnUNetPlans", "configurations": {"2d": config}}


@pytest.mark.parametrize(
    ("edits", "batch_size", "patch_size", "features"),
    [
        (PlanEdits(), 12, [64, 64], [32, 64, 128, 256]),
        (PlanEdits(batch_size=16), 16, [64, 64], [32, 64, 128, 256]),
        (PlanEdits(features_per_stage=(8, 16)), 12, [64, 64], [8, 16]),
        (PlanEdits(features_per_stage=(4, 8, 16, 32)), 12, [64, 64], [4, 8, 16, 32]),
        (PlanEdits(patch_size=(48, 40)), 12, [48, 40], [32, 64, 128, 256]),
        (PlanEdits(2, (8, 16, 32), (36, 36)), 2, [36, 36], [8, 16, 32]),
    ],
)
def test_apply_plan_edits(
    edits: PlanEdits, batch_size: int, patch_size: list[int], features: list[int]
) -> None:
    plans = toy_plans()
    edited = apply_plan_edits(plans, edits)
    config = edited["configurations"]["2d"]
    arch = config["architecture"]["arch_kwargs"]
    assert (config["batch_size"], config["patch_size"]) == (batch_size, patch_size)
    assert arch["features_per_stage"] == features
    n = len(features)
    assert arch["n_stages"] == n
    assert len(arch["kernel_sizes"]) == len(arch["strides"]) == len(arch["n_conv_per_stage"]) == n
    assert len(arch["n_conv_per_stage_decoder"]) == n - 1
    assert plans == toy_plans()


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (PlanEdits(features_per_stage=(8, 16, 32, 64, 128)), "stages"),
        (PlanEdits(patch_size=(60, 64)), "divisible"),
        (PlanEdits(patch_size=(62, 62), features_per_stage=(8, 16, 32)), "divisible"),
    ],
)
def test_apply_plan_edits_rejects_impossible_plans(edits: PlanEdits, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_plan_edits(toy_plans(), edits)


def test_apply_plan_edits_needs_the_configuration() -> None:
    with pytest.raises(ValueError, match="3d_fullres"):
        apply_plan_edits(toy_plans(), PlanEdits(batch_size=2), configuration="3d_fullres")


def test_plan_edits_from_mapping() -> None:
    edits = PlanEdits.from_mapping(
        {"batch_size": 16, "features_per_stage": [8, 16, 32, 64], "patch_size": [64, 64]}
    )
    assert edits == PlanEdits(16, (8, 16, 32, 64), (64, 64))
    assert PlanEdits.from_mapping(None) == PlanEdits.from_mapping({}) == PlanEdits()


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"batch_size": 2, "epochs": 3, "lr": 0.1}, r"\['epochs', 'lr'\]"),
        ({"batch_size": 0}, "batch_size"),
        ({"features_per_stage": []}, "features_per_stage"),
        ({"patch_size": [64, "64"]}, "patch_size"),
        ({"batch_size": True}, "batch_size"),
    ],
)
def test_plan_edits_from_mapping_rejects(mapping: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PlanEdits.from_mapping(mapping)
