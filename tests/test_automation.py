"""The automation on a copy of the tiny cohort: new subjects refresh the manifest, test sets and
splits, and only the partitions whose training split changed are sent to training."""

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import nibabel as nib
import numpy as np
import pytest

from cmrbias_dagster.automation.replay import SensorReplay, training_split_members
from cmrbias_dagster.definitions import build_definitions
from cmrbias_dagster.lib.cohort.synthetic import (
    DEMOGRAPHIC_COLUMNS,
    PHASES,
    CohortSpec,
    generate_subject,
)
from cmrbias_dagster.lib.cohort.synthetic.demographics import sample_group
from cmrbias_dagster.lib.design.study import load_study_design
from cmrbias_dagster.lib.refresh_plan import (
    CursorError,
    RefreshPlan,
    decode_cursor,
    encode_cursor,
    outdated,
    plan_refresh,
)
from cmrbias_dagster.partitions import study_partitions
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, build_resources

FOLDS = 2
UNTRAINED = "race_asian|0"
# Black women: they enter the sex and race_black splits that take enough black women, no others.
NEWCOMERS = (("SYN00037", "black", "female"), ("SYN00038", "black", "female"))


@pytest.mark.parametrize(
    ("current", "built_from", "expected"),
    [
        ({"a": "v1"}, {"a": "v1"}, {}),
        ({"a": "v2"}, {"a": "v1"}, {"a": "v2"}),
        ({"a": "v1"}, {}, {"a": "v1"}),
        ({"a": "v1", "b": "v1"}, {"a": None, "b": "v1"}, {"a": "v1"}),
    ],
)
def test_outdated_items(current: dict, built_from: dict, expected: dict) -> None:
    assert outdated(current, built_from) == expected


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ({}, RefreshPlan(("b", "c"), {"b": "v2", "c": "v1"})),
        ({"b": "v2"}, RefreshPlan(("c",), {"b": "v2", "c": "v1"})),
        ({"b": "v1"}, RefreshPlan(("b", "c"), {"b": "v2", "c": "v1"})),
        ({"a": "v0", "z": "v9"}, RefreshPlan(("b", "c"), {"b": "v2", "c": "v1", "z": "v9"})),
    ],
    ids=["nothing requested", "already requested", "requested older", "built and outside"],
)
def test_plan_refresh(requested: dict, expected: RefreshPlan) -> None:
    current = {"a": "v1", "b": "v2", "c": "v1"}
    built_from = {"a": "v1", "b": "v1", "c": None}
    assert plan_refresh(current, built_from, requested) == expected


@pytest.mark.parametrize("requested", [{}, {"race_black|25": "ab12", "test_set[sex]": "x+y"}])
def test_cursor_round_trip(requested: dict) -> None:
    assert decode_cursor(encode_cursor(requested)) == requested


@pytest.mark.parametrize("cursor", ["not json", '{"other": {}}', '{"requested": {"a": 1}}'])
def test_foreign_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(CursorError, match="sensor cursor"):
        decode_cursor(cursor)


def test_absent_cursor_holds_nothing() -> None:
    assert decode_cursor(None) == decode_cursor("") == {}


def mark_trained(instance: dg.DagsterInstance, partition: str) -> None:
    """Stand in for a partition_job run: its nnU-Net dataset, then every fold checkpoint."""
    for key in ["nnunet_dataset", *(f"fold_{fold}_checkpoint" for fold in range(FOLDS))]:
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
    first_waves: list[list[str]]
    first_training: list[str]
    idle_cohort: dg.SensorResult
    idle_training: dg.SensorResult
    new_cohort: dg.SensorResult
    refresh_waves: list[list[str]]
    changed: set[str]
    changed_training: list[str]
    repeat_training: dg.SensorResult


def partition_keys(tick: dg.SensorResult) -> list[str]:
    return [request.partition_key for request in tick.run_requests or []]


@pytest.fixture(scope="module")
def story(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Story:
    tmp = tmp_path_factory.mktemp("automation")
    root = shutil.copytree(tiny_cohort, tmp / "cohort")
    resources = build_resources(profile="tiny", work_dir=tmp / "work", cohort_root=root)
    defs = build_definitions(resources, FOLDS)
    daemon = SensorReplay(defs, resources, dg.DagsterInstance.ephemeral())

    first_waves, cohort_cursor = daemon.until_quiet("cohort_sensor", None)
    for partition in study_partitions.get_partition_keys():
        if partition != UNTRAINED:
            mark_trained(daemon.instance, partition)
    first_training = daemon.tick("training_sensor", None)
    idle_cohort = daemon.tick("cohort_sensor", cohort_cursor)
    idle_training = daemon.tick("training_sensor", first_training.cursor)
    before = training_split_members(tmp / "work" / "cmrbias_tiny.duckdb")

    add_subjects(root)
    new_cohort = daemon.tick("cohort_sensor", idle_cohort.cursor)
    daemon.run(new_cohort)
    refresh_waves, _ = daemon.until_quiet("cohort_sensor", new_cohort.cursor)
    after = training_split_members(tmp / "work" / "cmrbias_tiny.duckdb")
    changed_training = daemon.tick("training_sensor", idle_training.cursor)
    repeat_training = daemon.tick("training_sensor", changed_training.cursor)
    return Story(
        first_waves=first_waves,
        first_training=partition_keys(first_training),
        idle_cohort=idle_cohort,
        idle_training=idle_training,
        new_cohort=new_cohort,
        refresh_waves=refresh_waves,
        changed={key for key in before if before[key] != after[key]},
        changed_training=partition_keys(changed_training),
        repeat_training=repeat_training,
    )


def test_first_refresh_goes_manifest_then_test_sets_then_splits(story: Story) -> None:
    manifest, test_sets, splits = story.first_waves
    assert manifest == ["cohort_job:None"]
    assert test_sets == [f"experiment_job:{e}" for e in ("race_asian", "race_black", "sex")]
    assert len(splits) == 15 and {wave.split(":")[0] for wave in splits} == {"partition_job"}


def test_untrained_partition_is_trained_once(story: Story) -> None:
    assert story.first_training == [UNTRAINED]
    assert not story.idle_training.run_requests


def test_unchanged_cohort_requests_nothing(story: Story) -> None:
    assert not story.idle_cohort.run_requests
    assert not story.idle_cohort.asset_events


def test_new_subjects_refresh_the_manifest(story: Story) -> None:
    assert [r.job_name for r in story.new_cohort.run_requests] == ["cohort_job"]
    (observation,) = story.new_cohort.asset_events
    assert observation.asset_key == dg.AssetKey("raw_cohort")
    assert [len(wave) for wave in story.refresh_waves] == [3, 15]


def test_only_changed_splits_are_trained(story: Story) -> None:
    assert 0 < len(story.changed) < 15, "the newcomers should change some splits, not all"
    assert story.changed_training == sorted(story.changed)
    assert not story.repeat_training.run_requests


def record_split(instance: dg.DagsterInstance, partition: str, version: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "training_split", partition=partition, tags={"dagster/data_version": version}
        )
    )


def add_running(instance: dg.DagsterInstance, partition: str, selection: set | None) -> None:
    instance.add_run(
        dg.DagsterRun(
            job_name="partition_job",
            status=dg.DagsterRunStatus.STARTED,
            tags={"dagster/partition": partition},
            asset_selection=frozenset(dg.AssetKey(key) for key in selection) if selection else None,
        )
    )


def test_nightly_schedule_trains_outdated_partitions_not_in_training(tmp_path: Path) -> None:
    resources = build_resources(profile="tiny", work_dir=tmp_path, cohort_root=tmp_path)
    defs = build_definitions(resources, FOLDS)
    with dg.instance_for_test() as instance:  # schedules need a persistent instance
        record_split(instance, "sex|25", "a")
        mark_trained(instance, "sex|25")
        record_split(instance, "sex|25", "a")  # re-drawn, same members: trained
        record_split(instance, "sex|50", "a")
        mark_trained(instance, "sex|50")
        record_split(instance, "sex|50", "b")  # changed since training
        record_split(instance, "sex|75", "a")  # never trained, only a split re-draw running
        add_running(instance, "sex|75", {"training_split", "cv_folds"})
        record_split(instance, "race_black|25", "a")  # never trained, training running
        add_running(instance, "race_black|25", None)
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2025, 1, 2, 2, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        )
        data = defs.resolve_schedule_def("nightly_training_schedule").evaluate_tick(context)
    assert [(r.partition_key, r.run_key) for r in data.run_requests] == [
        ("sex|50", "sex|50"),
        ("sex|75", "sex|75"),
    ]
