"""The automation conditions on a copy of the tiny cohort, evaluated with
`dg.evaluate_automation_conditions` tick by tick as the two sensors would: new subjects refresh the
manifest, test sets and splits, and only the partitions whose training split changed retrain."""

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import nibabel as nib
import numpy as np
import pytest

from cmrbias_dagster.automation import (
    cohort_observation_sensor,
    cohort_sensor,
    training_sensor,
)
from cmrbias_dagster.automation.in_process import (
    AutomationReplay,
    observe_cohort,
    training_split_members,
)
from cmrbias_dagster.definitions import build_definitions
from cmrbias_dagster.lib.cohort.synthetic import (
    DEMOGRAPHIC_COLUMNS,
    PHASES,
    CohortSpec,
    generate_subject,
)
from cmrbias_dagster.lib.cohort.synthetic.demographics import sample_group
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.partitions import study_partitions
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, build_resources

FOLDS = 2
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
TRAINED = [
    "nnunet_dataset",
    "nnunet_plans",
    *(f"fold_{fold}_checkpoint" for fold in range(FOLDS)),
    "ensemble_prediction",
    "segmentation_metrics",
    "clinical_measures",
    "case_calibration",
]
CHEAP = {
    "subject_manifest",
    "rejected_subjects",
    "cohort_characteristics",
    "test_set",
    "training_split",
    "cv_folds",
}
# Black women: they enter the sex and race_black splits that take enough black women, no others.
NEWCOMERS = (("SYN00037", "black", "female"), ("SYN00038", "black", "female"))
Requested = dict[str, set[str | None]]


def mark_trained(instance: dg.DagsterInstance, partition: str, keys: list[str] = TRAINED) -> None:
    """Stand in for a partition_job run: each training asset, in dependency order."""
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def add_subjects(root: Path) -> None:
    """Write the newcomers with the synthetic generator and append their demographics."""
    design = load_study_design(DEFAULT_STUDY_FILE)
    spec = CohortSpec.from_mapping(design.profile("tiny").synthetic_cohort, seed=design.seed)
    rng = np.random.default_rng(7)
    for subject_id, race, sex in NEWCOMERS:
        measures = {name: float(v[0]) for name, v in sample_group(race, sex, 1, rng).items()}
        row = {"subject_id": subject_id, "sex": sex, "race": race, **measures}
        subject = generate_subject(row, spec)
        (root / subject_id).mkdir()
        for phase in PHASES:
            for prefix, arrays in (("sa", subject.images), ("label_sa", subject.labels)):
                image = nib.Nifti1Image(arrays[phase], subject.affine)
                nib.save(image, root / subject_id / f"{prefix}_{phase}.nii.gz")
        with (root / "demographics.csv").open("a") as table:
            table.write(",".join(str(row[column]) for column in DEMOGRAPHIC_COLUMNS) + "\n")


@dataclass
class Story:
    first_waves: list[Requested]
    first_training: Requested
    idle_training: Requested
    idle_cohort: Requested
    refresh_waves: list[Requested]
    changed: set[str]
    changed_training: Requested
    repeat_training: Requested


@pytest.fixture(scope="module")
def story(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Story:
    tmp = tmp_path_factory.mktemp("automation")
    root = shutil.copytree(tiny_cohort, tmp / "cohort")
    resources = build_resources(profile="tiny", work_dir=tmp / "work", cohort_root=root)
    defs, instance = build_definitions(resources, FOLDS), dg.DagsterInstance.ephemeral()
    cohort = AutomationReplay(defs, instance, cohort_sensor, run_config=QUIET)
    training = AutomationReplay(defs, instance, training_sensor)
    cohort.tick(), training.tick()  # the daemon's first ticks, before the cohort is observed

    observe_cohort(defs, instance)
    first_waves = cohort.until_quiet()
    first_training = training.tick()
    for partition in study_partitions.get_partition_keys():
        mark_trained(instance, partition)
    idle_training = training.tick()
    observe_cohort(defs, instance)
    idle_cohort = cohort.tick()
    before = training_split_members(tmp / "work" / "cmrbias_tiny.duckdb")

    add_subjects(root)
    observe_cohort(defs, instance)
    refresh_waves = cohort.until_quiet()
    after = training_split_members(tmp / "work" / "cmrbias_tiny.duckdb")
    changed_training = training.tick()
    return Story(
        first_waves=first_waves,
        first_training=first_training,
        idle_training=idle_training,
        idle_cohort=idle_cohort,
        refresh_waves=refresh_waves,
        changed={key for key in before if before[key] != after[key]},
        changed_training=changed_training,
        repeat_training=training.tick(),
    )


def test_first_refresh_goes_manifest_then_test_sets_then_splits(story: Story) -> None:
    manifest, test_sets, splits = story.first_waves
    assert manifest == {
        "subject_manifest": {None},
        "rejected_subjects": {None},
        "cohort_characteristics": {None},
    }
    assert test_sets == {"test_set": {"race_asian", "race_black", "sex"}}
    every_partition = set(study_partitions.get_partition_keys())
    assert splits == {"training_split": every_partition, "cv_folds": every_partition}


def test_new_splits_are_trained_once_when_training_is_on(story: Story) -> None:
    every_partition = set(study_partitions.get_partition_keys())
    assert story.first_training == dict.fromkeys(TRAINED, every_partition)
    assert story.idle_training == {}


def test_unchanged_cohort_requests_nothing(story: Story) -> None:
    assert story.idle_cohort == {}


def test_new_subjects_refresh_only_the_cheap_assets(story: Story) -> None:
    requested = {key for wave in story.refresh_waves for key in wave}
    assert requested == CHEAP
    assert story.refresh_waves[0] == story.first_waves[0]


def test_only_changed_splits_are_retrained_once(story: Story) -> None:
    assert 0 < len(story.changed) < 15, "the newcomers should change some splits, not all"
    assert story.changed_training == dict.fromkeys(TRAINED, story.changed)
    assert story.repeat_training == {}


def test_cheap_automation_runs_and_training_waits_for_the_user() -> None:
    assert cohort_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert cohort_observation_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert training_sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_sensors_split_the_assets_into_cheap_and_training(tmp_path: Path) -> None:
    defs = build_definitions(build_resources(profile="tiny", work_dir=tmp_path), FOLDS)
    graph = defs.resolve_asset_graph()
    cheap = cohort_sensor.asset_selection.resolve(graph)
    trained = training_sensor.asset_selection.resolve(graph)
    assert {key.to_user_string() for key in cheap} == CHEAP  # raw_cohort: the observation sensor
    assert {key.to_user_string() for key in trained} == set(TRAINED)


def start_run(defs: dg.Definitions, instance: dg.DagsterInstance, partition: str, keys: list[str]):
    """A partition_job run for `keys`, created (its materializations planned) but not started."""
    return instance.create_run_for_job(
        defs.resolve_job_def("partition_job"),
        tags={"dagster/partition": partition},
        asset_selection=frozenset(dg.AssetKey(key) for key in keys),
    )


def test_nightly_retry_trains_failed_and_missing_partitions_not_in_progress(
    tmp_path: Path,
) -> None:
    defs = build_definitions(build_resources(profile="tiny", work_dir=tmp_path), FOLDS)
    with dg.instance_for_test() as instance:  # runs need a persistent instance
        instance.report_runless_asset_event(dg.AssetMaterialization("subject_manifest"))
        for experiment in ("sex", "race_black"):
            mark_trained(instance, experiment, ["test_set"])
        for partition in ("sex|25", "sex|50", "sex|75", "race_black|25"):
            mark_trained(instance, partition, ["training_split", "cv_folds"])
        mark_trained(instance, "sex|25")  # trained
        mark_trained(instance, "sex|50", TRAINED[:3])  # fold 1 failed
        instance.report_run_failed(start_run(defs, instance, "sex|50", TRAINED[3:]))
        start_run(defs, instance, "race_black|25", TRAINED)  # queued; sex|75 never trained
        training = AutomationReplay(defs, instance, training_sensor)
        before = training.tick(datetime(2025, 1, 2, 1, 59, tzinfo=UTC))
        nightly = training.tick(datetime(2025, 1, 2, 2, 0, 30, tzinfo=UTC))
        after = training.tick(datetime(2025, 1, 2, 2, 1, 30, tzinfo=UTC))
    assert before == after == {}
    assert nightly == {
        **dict.fromkeys(TRAINED, {"sex|75"}),
        **dict.fromkeys(TRAINED[3:], {"sex|50", "sex|75"}),
    }


def draw_split(instance: dg.DagsterInstance, partition: str, version: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "training_split", partition=partition, tags={"dagster/data_version": version}
        )
    )


def test_split_change_in_the_tick_a_training_ends_still_retrains(tmp_path: Path) -> None:
    defs = build_definitions(build_resources(profile="tiny", work_dir=tmp_path), FOLDS)
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization("subject_manifest"))
    mark_trained(instance, "sex", ["test_set"])
    for partition in ("sex|25", "sex|50"):
        draw_split(instance, partition, "a")
        mark_trained(instance, partition, ["cv_folds"])
    training = AutomationReplay(defs, instance, training_sensor)
    training.tick()
    mark_trained(instance, "sex|25")
    mark_trained(instance, "sex|50")
    draw_split(instance, "sex|25", "b")  # new members, same tick as the training's end
    draw_split(instance, "sex|50", "a")  # re-drawn, same members
    assert training.tick()["nnunet_dataset"] == {"sex|25"}


def test_the_cohort_is_observed_without_a_run_only_when_its_listing_changes(
    tiny_cohort: Path, tmp_path: Path
) -> None:
    root = shutil.copytree(tiny_cohort, tmp_path / "cohort")
    resources = build_resources(profile="tiny", work_dir=tmp_path / "work", cohort_root=root)
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        return cohort_observation_sensor(context)

    first = tick(None)
    [observation] = first.asset_events
    assert observation.asset_key == dg.AssetKey("raw_cohort")
    assert observation.tags["dagster/data_version"] == first.cursor
    assert tick(first.cursor).asset_events == []
    add_subjects(root)
    changed = tick(first.cursor)
    assert changed.cursor != first.cursor
    assert [e.tags["dagster/data_version"] for e in changed.asset_events] == [changed.cursor]
    assert instance.get_runs() == []
