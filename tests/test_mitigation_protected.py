"""Protected models (one nnU-Net model per group; docs/mitigation.md): the pure pieces, then fold 0
of the tiny study's race_black|25 (1 black and 3 white training subjects: 2 and 6 cases) trained
as protected models, and its test subjects routed to their group's model."""

from dataclasses import replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import nibabel as nib
import numpy as np
import pytest
import yaml

from cmrbias_dagster.assets.support.ensemble_routes import protected_routing, routing_metadata
from cmrbias_dagster.lib.nnunet.convergence import stored_fold_result, stored_models
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment, subject_cases
from cmrbias_dagster.lib.nnunet.fold_records import (
    FINAL_CHECKPOINT,
    RESULT_FILE,
    fold_folder,
    read_result,
    trainer_folder,
)
from cmrbias_dagster.lib.nnunet.inference import models_of_cases, predict_ensemble
from cmrbias_dagster.lib.nnunet.isolation import run_in_fresh_process
from cmrbias_dagster.lib.nnunet.mitigation import case_groups, model_environments
from cmrbias_dagster.lib.nnunet.mitigation.protected import (
    cases_of_group,
    fold_training_groups,
    group_environment,
    group_models_stamp,
    read_splits,
    train_on_group,
)
from cmrbias_dagster.lib.nnunet.mitigation.routing import (
    MissingGroupModelError,
    route_test_subjects,
    trained_group_models,
)
from cmrbias_dagster.lib.nnunet.training import PROTECTED_MODELS
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, StudyResource, build_resources
from tests.conftest import FOLD_ASSETS, PLANNED_PARTITION, TINY_TRAINER

DATASET = "Dataset511_race_black_25"
GROUPS = {"a_ED": "black", "a_ES": "black", "b_ED": "white", "b_ES": "white", "c_ED": "white"}
SPLITS = [
    {"train": ["a_ED", "a_ES", "b_ED"], "val": ["c_ED"]},
    {"train": ["c_ED"], "val": ["a_ED"]},
]


def test_each_fold_trains_the_groups_of_its_training_cases() -> None:
    assert fold_training_groups(SPLITS, 0, GROUPS) == ["black", "white"]
    assert fold_training_groups(SPLITS, 1, GROUPS) == ["white"]  # ratio 0: one model
    with pytest.raises(ValueError, match=r"without a group, e.g. \['a_ED', 'a_ES'\]"):
        fold_training_groups(SPLITS, 0, {"b_ED": "white"})
    assert cases_of_group(GROUPS, "black") == {"a_ED": "black", "a_ES": "black"}


def test_a_protected_trainer_sees_its_groups_cases_only() -> None:
    logged: list[str] = []
    trainer = SimpleNamespace(
        do_split=lambda: (["a_ED", "a_ES", "b_ED"], ["b_ES", "c_ED"]),
        print_to_log_file=logged.append,
    )
    train_on_group(trainer, cases_of_group(GROUPS, "white"))
    assert trainer.do_split() == (["b_ED"], ["b_ES", "c_ED"])
    train_on_group(trainer, cases_of_group(GROUPS, "black"))  # no black validation case: all
    assert trainer.do_split() == ([], ["b_ES", "c_ED"])
    assert logged[0] == "protected model of group white: 1 training and 2 validation cases"
    with pytest.raises(ValueError, match="one group's cases; the mapping holds groups"):
        train_on_group(trainer, GROUPS)


def test_subjects_go_to_their_groups_model_or_the_only_one(tmp_path: Path) -> None:
    env = NnunetEnvironment(tmp_path / "raw", tmp_path / "pre", tmp_path / "results")
    for group, folds in (("black", [0]), ("white", [0, 1])):
        for fold in folds:
            folder = fold_folder(group_environment(env, group), "D", fold, TINY_TRAINER)
            folder.mkdir(parents=True)
            (folder / FINAL_CHECKPOINT).touch()
    models = trained_group_models(env, "D", ["black", "white"], [0, 1], TINY_TRAINER)
    assert models == {"white": tmp_path / "results/protected_models/white/D" / TINY_TRAINER}
    routing = route_test_subjects({"s1": "black", "s2": "white"}, models)
    assert routing.subjects == {"s1": "white", "s2": "white"} and routing.fallback == ["s1"]
    assert routing.cases == {f"s{i}_{p}": models["white"] for i in (1, 2) for p in ("ED", "ES")}
    both = {"black": Path("b"), "white": Path("w")}
    assert route_test_subjects({"s1": "black"}, both).cases == {
        "s1_ED": Path("b"),
        "s1_ES": Path("b"),
    }
    with pytest.raises(MissingGroupModelError, match="no group has a protected model"):
        route_test_subjects({"s1": "black"}, {})
    with pytest.raises(ValueError, match=r"no model routed for test case\(s\) \['x'\]"):
        models_of_cases([SimpleNamespace(case_id="x")], {"y": Path("b")}, Path("own"))  # type: ignore[list-item]
    assert group_models_stamp({"a": "1", "b": "2"}) == group_models_stamp({"b": "2", "a": "1"})
    assert group_models_stamp({"a": "1"}) != group_models_stamp({"a": "2"})


@pytest.fixture(scope="module")
def tiny(planned_study, tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory):
    """The planned partition's environment, case groups and test set, and resources whose design
    trains race_black as protected models (same partitions, dataset and work folder), for two
    epochs without a final validation."""
    design = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())
    design["experiments"]["race_black"]["mitigation"] = "protected_models"
    # Shorter than the tiny profile's training, to keep the test short.
    design["profiles"]["tiny"]["training"].update(epochs=2, final_validation=False)
    study_file = tmp_path_factory.mktemp("protected") / "study.yaml"
    study_file.write_text(yaml.safe_dump(design, sort_keys=False))
    resources = build_resources(
        profile="tiny",
        work_dir=planned_study.work,
        cohort_root=tiny_cohort,
        study_file=study_file,
        device="cpu",
    )
    with duckdb.connect(str(planned_study.work / "cmrbias_tiny.duckdb"), read_only=True) as db:
        split = db.sql("select * from cmrbias.training_split").pl()
        test_set = db.sql("select * from cmrbias.test_set").pl()
        manifest = db.sql("select * from cmrbias.subject_manifest").pl()
    study: StudyResource = resources["study"]
    return SimpleNamespace(
        assets=planned_study.assets,
        resources=resources,
        study=study,
        env=study.nnunet_environment(),
        trainer=trainer_folder(study.training_settings()),  # the two-epoch recipe's folder
        groups=case_groups(split.filter(experiment="race_black", ratio=25)),
        test_set=test_set.filter(experiment="race_black"),
        manifest=manifest,
    )


@pytest.fixture(scope="module")
def protected_fold(tiny):
    """fold_0_checkpoint of race_black|25 materialised under the protected-models design."""
    result = dg.materialize(
        [*tiny.assets, *FOLD_ASSETS],
        selection=["fold_0_checkpoint"],
        partition_key=PLANNED_PARTITION,
        resources=tiny.resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    return result.asset_materializations_for_node("fold_0_checkpoint")[0]


def test_a_protected_fold_trains_one_model_per_group_on_its_cases(tiny, protected_fold) -> None:
    metadata = {name: value.value for name, value in protected_fold.metadata.items()}
    assert metadata["group_models"] == ["black", "white"]
    assert metadata["mitigation"] == "protected_models" and metadata["retrained"] is True
    train = read_splits(tiny.env, DATASET)[0]["train"]
    stamps = {}
    for group in ("black", "white"):
        folder = fold_folder(group_environment(tiny.env, group), DATASET, 0, tiny.trainer)
        result = read_result(folder / RESULT_FILE)
        assert metadata[f"{group}_checkpoint"] == result.checkpoint
        assert result.checkpoint == str(folder / FINAL_CHECKPOINT)
        assert result.mitigation == "protected_models" and result.epochs_run == 2
        own = [case for case in train if tiny.groups[case] == group]
        assert len(own) == {"black": 2, "white": 6}[group]
        log = next(folder.glob("training_log_*.txt")).read_text()
        assert f"protected model of group {group}: {len(own)} training and" in log
        stamps[group] = result.stamp
    assert stamps["black"] != stamps["white"]
    assert protected_fold.tags["dagster/data_version"] == group_models_stamp(stamps)


def test_the_convergence_records_count_each_groups_model(tiny, protected_fold) -> None:
    """`model_convergence` reads the stored models of a partition: its own (whatever other tests
    trained there), then, given the experiment's groups, each group's protected model."""
    own = stored_models([tiny.env], DATASET, [0], tiny.trainer)
    stored = stored_fold_result(fold_folder(tiny.env, DATASET, 0, tiny.trainer))
    assert own == [r for r in [stored] if r]
    trees = model_environments(tiny.env, PROTECTED_MODELS, ("black", "white"))
    models = stored_models(trees, DATASET, [0], tiny.trainer)
    assert models[: len(own)] == own
    assert [result.stamp for result in models[len(own) :]] == [
        read_result(
            fold_folder(group_environment(tiny.env, g), DATASET, 0, tiny.trainer) / RESULT_FILE
        ).stamp
        for g in ("black", "white")
    ]


def test_each_test_subject_is_segmented_by_its_groups_model(
    tiny, protected_fold, tmp_path: Path
) -> None:
    """One prediction (one fresh process) of one black and one white test subject three times
    over, under prefixed case ids: routed to both groups' models, and as at a ratio that trains
    one group, where that group's model segments everyone."""
    subjects = tiny.test_set.group_by("group", maintain_order=True).head(1)
    subject_groups = dict(subjects.select("subject_id", "group").iter_rows())
    models = trained_group_models(tiny.env, DATASET, ["black", "white"], [0], tiny.trainer)
    assert sorted(models) == ["black", "white"]
    partition = tiny.study.partition(PLANNED_PARTITION)
    asset_routing = protected_routing(tiny.study, partition, subjects, n_folds=1)
    assert asset_routing == route_test_subjects(subject_groups, models)
    assert routing_metadata(asset_routing)["fallback"].startswith("none")
    routings = {
        "routed": route_test_subjects(subject_groups, models),
        **{group: route_test_subjects(subject_groups, {group: models[group]}) for group in models},
    }
    assert routings["routed"].fallback == []
    assert routings["white"].fallback == [s for s, g in subject_groups.items() if g == "black"]
    assert routing_metadata(routings["white"])["fallback"].endswith(
        "white model, the only one trained"
    )
    cases = subject_cases(subjects, tiny.manifest)
    runs = [(name, replace(c, case_id=f"{name}-{c.case_id}")) for name in routings for c in cases]
    prediction = tiny.study.settings().prediction
    routes = {case.case_id: routings[name].cases[case.case_id.split("-")[1]] for name, case in runs}
    run_in_fresh_process(
        partial(predict_ensemble, trainer=tiny.trainer, routes=routes),
        *(tiny.env, DATASET, [0], [case for _, case in runs], tmp_path, prediction, "cpu"),
    )

    def segmentation(run: str, case: str) -> np.ndarray:
        return np.asarray(nib.load(tmp_path / f"{run}-{case}.nii.gz").dataobj)

    for case in cases:
        group = subject_groups[case.case_id.rsplit("_", 1)[0]]
        routed = segmentation("routed", case.case_id)
        assert np.array_equal(routed, segmentation(group, case.case_id))
    # The two groups' models segment differently, so the routing above is not vacuous.
    assert any(
        not np.array_equal(segmentation("black", c.case_id), segmentation("white", c.case_id))
        for c in cases
    )
