"""The cohort assets end to end through Dagster, on a tiny toy cohort, into a real DuckDB file."""

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from cmrbias_dagster.assets import cohort
from cmrbias_dagster.resources import build_resources
from tests.toy_cohort import demographics_rows, write_toy_cohort


@pytest.fixture
def resources(tmp_path: Path) -> dict[str, object]:
    root = write_toy_cohort(tmp_path / "raw", demographics_rows(2))
    (root / "TOY005" / "label_sa_ES.nii.gz").unlink()
    return build_resources(profile="quick", work_dir=tmp_path / "work", cohort_root=root)


def test_manifest_and_table_1_materialise(tmp_path: Path, resources: dict[str, object]) -> None:
    result = dg.materialize(
        [
            *dg.load_assets_from_modules([cohort]),
            *dg.load_asset_checks_from_modules([cohort]),
        ],
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    with duckdb.connect(str(tmp_path / "work" / "cmrbias_quick.duckdb"), read_only=True) as db:
        manifest = db.sql("select * from cmrbias.subject_manifest").pl()
        rejected = db.sql("select * from cmrbias.rejected_subjects").pl()
        table_1 = db.sql("select * from cmrbias.cohort_characteristics").pl()
    assert manifest.height == 11 and "TOY005" not in manifest["subject_id"].to_list()
    assert rejected.to_dicts() == [
        {"subject_id": "TOY005", "file": "label_sa_ES.nii.gz", "reason": "file is missing"}
    ]
    assert set(table_1["group"]) == {"overall", "male", "female", "white", "black", "asian"}
    metadata = result.asset_materializations_for_node("subject_manifest")[0].metadata
    assert metadata["subjects"].value == 11
    assert metadata["sample_slices"].value.startswith("![mid ED slices")
    assert (tmp_path / "work" / "quick" / "figures" / "cohort_sample.png").stat().st_size > 1000
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["unique_subject_ids"].passed
    assert not checks["no_rejected_subjects"].passed
    assert not checks[
        "group_counts"
    ].passed  # two subjects per stratum cannot fill the quick design
    assert checks["labels_complete"].passed
    table_md = result.asset_materializations_for_node("cohort_characteristics")[0].metadata
    assert "| subjects | 11 |" in table_md["table_1"].value


def test_definitions_load_and_jobs_resolve() -> None:
    from cmrbias_dagster.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"raw_cohort", "subject_manifest", "rejected_subjects", "cohort_characteristics"} <= keys
    for job in defs.resolve_all_job_defs():
        assert job.name


def test_missing_cohort_folder_fails_clearly(tmp_path: Path) -> None:
    resources = build_resources(work_dir=tmp_path / "work", cohort_root=tmp_path / "nowhere")
    result = dg.materialize(
        dg.load_assets_from_modules([cohort]),
        resources=resources,
        raise_on_error=False,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    assert "nowhere does not exist: generate the synthetic cohort" in error.cause.message


def test_manifest_reloads_through_io_manager(tmp_path: Path, resources: dict[str, object]) -> None:
    dg.materialize(
        dg.load_assets_from_modules([cohort]),
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    loaded = dg.materialize(
        [dg.AssetSpec("subject_manifest"), cohort.cohort_characteristics],
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    table = loaded.output_for_node("cohort_characteristics")
    assert (
        isinstance(table, pl.DataFrame) and table.height == 4 * 6
    )  # measures x (overall + 5 groups)
