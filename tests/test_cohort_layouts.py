"""`subject_manifest` on every layout, chosen in the `cohort` resource's configuration, and the
cohort-level bad inputs: an empty cohort, a design the cohort cannot fill, an unknown layout."""

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from cmrbias_dagster.assets import cohort, splits
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.splits.sampling import draw_test_set
from cmrbias_dagster.resources import CohortResource, build_resources
from cmrbias_dagster.resources.study import PROJECT_ROOT
from tests.layout_fixtures import (
    ukbb_export_rows,
    write_acdc_cohort,
    write_csv,
    write_mnms1_cohort,
    write_mnms2_cohort,
)
from tests.test_sunnybrook import SUNNYBROOK
from tests.toy_cohort import demographics_rows, write_toy_cohort

COHORT_ASSETS = [
    *dg.load_assets_from_modules([cohort]),
    *dg.load_asset_checks_from_modules([cohort]),
]


def materialize_layout(
    tmp_path: Path, config: dict[str, object], selection=None, assets=COHORT_ASSETS
) -> dg.ExecuteInProcessResult:
    """Materialise with the cohort resource configured at launch, as the launchpad does."""
    resources = build_resources(profile="quick", work_dir=tmp_path / "work")
    resources["cohort"] = CohortResource.configure_at_launch()
    return dg.materialize(
        assets,
        selection=selection,
        resources=resources,
        run_config={"resources": {"cohort": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def stored(tmp_path: Path, table: str) -> pl.DataFrame:
    with duckdb.connect(str(tmp_path / "work" / "cmrbias_quick.duckdb"), read_only=True) as db:
        return db.sql(f"select * from cmrbias.{table}").pl()


@pytest.mark.parametrize(
    ("layout", "writer", "attribute", "values"),
    [
        ("mnms1", write_mnms1_cohort, "vendor", {"a", "b"}),
        ("mnms2", write_mnms2_cohort, "pathology", {"nor", "dlv"}),
        ("acdc", write_acdc_cohort, "pathology", {"nor", "dcm"}),
    ],
)
def test_manifest_from_each_layout(
    tmp_path: Path, layout: str, writer, attribute: str, values: set[str]
) -> None:
    root = writer(tmp_path / "raw")
    result = materialize_layout(tmp_path, {"root": str(root), "layout": layout})
    assert result.success
    manifest = stored(tmp_path, "subject_manifest")
    assert manifest.height == 4 and set(manifest[attribute]) == values
    assert stored(tmp_path, "rejected_subjects").height == 0
    assert stored(tmp_path, "cohort_characteristics").height
    metadata = result.asset_materializations_for_node("subject_manifest")[0].metadata
    assert metadata["layout"].value == layout


def test_sunnybrook_real_images_through_the_assets(tmp_path: Path) -> None:
    if not SUNNYBROOK.is_dir():
        pytest.skip(f"no Sunnybrook cohort at {SUNNYBROOK}")
    config = {"root": str(SUNNYBROOK), "required_fields": ["sex", "age"]}
    result = materialize_layout(tmp_path, config)
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["labels_complete"].passed
    assert "LVM (ES), RVBP (ED+ES)" in checks["labels_complete"].metadata["incomplete"].value
    table_1 = stored(tmp_path, "cohort_characteristics")
    assert set(table_1["measure"]) == {"age (years)"} and set(table_1["group"]) == {
        "overall",
        "male",
    }


def test_ukbb_export_configured_with_its_code_mapping(tmp_path: Path) -> None:
    rows = demographics_rows(1)
    root = write_toy_cohort(tmp_path / "raw", rows)
    export = ukbb_export_rows([str(row["subject_id"]) for row in rows])
    export[0]["21000-0.0"] = "5"
    path = write_csv(tmp_path / "ukb12345.csv", export)
    config = {
        "root": str(root),
        "demographics_file": str(path),
        "demographics_format": "ukbb_export",
        "ukbb_ethnicity_groups": {
            "1001": "white",
            "1002": "white",
            "4001": "black",
            "4002": "black",
            "3001": "asian",
            "3004": "asian",
            "5": "east_asian",
        },
    }
    assert materialize_layout(tmp_path, config).success
    races = stored(tmp_path, "subject_manifest")["race"].to_list()
    assert races == ["east_asian", "black", "asian", "white", "black", "asian"]


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    return str(error.cause.message if error.cause else error.message)


def test_empty_cohort_fails_clearly(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    root.mkdir()
    (root / "demographics.csv").write_text("subject_id,sex,race,age,height_cm,weight_kg\n")
    result = materialize_layout(tmp_path, {"root": str(root)})
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    assert f"no usable subject in {root}" in error.message


def test_unknown_layout_is_refused_at_launch(tmp_path: Path) -> None:
    root = write_toy_cohort(tmp_path / "raw", demographics_rows(1))
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        materialize_layout(tmp_path, {"root": str(root), "layout": "nifti"})
    assert "Literal['ukbb', 'mnms1', 'mnms2', 'acdc'] got nifti" in str(refused.value)


@pytest.mark.parametrize(
    ("writer", "layout", "partition", "cause"),
    [
        (None, "ukbb", "race_black", "race=black, sex=female: needed {n}, available 2"),
        (
            write_acdc_cohort,
            "acdc",
            "sex",
            "sex=female, race=black: needed {n}, available 0; sex=female, race=white: needed {n}, "
            "available 0; sex=male, race=black: needed {n}, available 0; sex=male, race=white: "
            "needed {n}, available 0 (sex values in the manifest: none; race values in the "
            "manifest: none)",
        ),
    ],
)
def test_cohort_too_small_for_the_design_is_a_feasibility_error(
    tmp_path: Path, writer, layout: str, partition: str, cause: str
) -> None:
    root = (
        writer(tmp_path / "raw")
        if writer
        else write_toy_cohort(tmp_path / "raw", demographics_rows(2))
    )
    config = {"root": str(root), "layout": layout}
    assert materialize_layout(tmp_path, config).success
    resources = build_resources(profile="quick", work_dir=tmp_path / "work")
    result = dg.materialize(
        [*dg.load_assets_from_modules([cohort, splits])],
        selection=["test_set"],
        partition_key=partition,
        resources={**resources, "cohort": CohortResource(root=str(root), layout=layout)},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    message = failure_message(result)
    test_size = load_study_design(PROJECT_ROOT / "data" / "study.yaml").profile("quick").test_size
    assert f"experiment {partition!r}, test set: too few subjects in" in message
    assert cause.format(n=test_size // 4) in message  # two groups x two held values


def test_example_vendor_design_draws_on_mnms1(tmp_path: Path) -> None:
    root = write_mnms1_cohort(tmp_path / "raw", n=8)
    assert materialize_layout(tmp_path, {"root": str(root), "layout": "mnms1"}).success
    design = load_study_design(PROJECT_ROOT / "docs" / "study_mnms_vendor.yaml")
    drawn = draw_test_set(
        stored(tmp_path, "subject_manifest"), design.experiment("vendor_ab"), 8, 1
    )
    assert drawn.group_by("group", "held").len()["len"].to_list() == [2, 2, 2, 2]


def test_cohort_configured_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CMRBIAS_COHORT_LAYOUT", "acdc")
    monkeypatch.setenv("CMRBIAS_COHORT_REQUIRED", "pathology, height_cm")
    cohort_resource = build_resources(work_dir=tmp_path, cohort_root=tmp_path / "acdc")["cohort"]
    assert cohort_resource.layout == "acdc"
    assert cohort_resource.required_fields == ["pathology", "height_cm"]
    assert cohort_resource.demographics_format == "table"
