"""An ACDC pathology study without a held attribute through Dagster: the manifest, the test set and
training splits with their folds, drawn from a generated ACDC-layout cohort with
docs/study_acdc_pathology.yaml.

Partitions follow the study file that CMRBIAS_STUDY_FILE names when the code location loads, so
the assets are materialised in a fresh interpreter started with that variable, as `make ui` is.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cmrbias_dagster.resources.study import PROJECT_ROOT
from tests.layout_fixtures import write_acdc_cohort

STUDY_FILE = PROJECT_ROOT / "docs" / "study_acdc_pathology.yaml"
PARTITIONS = ("pathology_dcm|25", "pathology_dcm|100")
SPLIT_CHECKS = (
    "test_set_balanced",
    "ratio_and_balance_exact",
    "disjoint_from_test_set",
    "folds_grouped_by_subject",
)

MATERIALIZE = """
import json, sys
from pathlib import Path
import dagster as dg
from cmrbias_dagster.assets import cohort, splits
from cmrbias_dagster.resources import CohortResource, build_resources

study_file, root, work = (Path(arg) for arg in sys.argv[1:4])
assets = [
    *dg.load_assets_from_modules([cohort, splits]),
    *dg.load_asset_checks_from_modules([cohort]),
]
resources = build_resources(profile="tiny", work_dir=work, study_file=study_file)
resources["cohort"] = CohortResource(root=str(root), layout="acdc")
instance = dg.DagsterInstance.ephemeral()
checks = {}
runs = [(["subject_manifest", "rejected_subjects"], None), (["test_set"], "pathology_dcm")]
runs += [(["training_split", "cv_folds"], key) for key in sys.argv[4:]]
for selection, key in runs:
    result = dg.materialize(
        assets, selection=selection, partition_key=key, resources=resources, instance=instance
    )
    for evaluation in result.get_asset_check_evaluations():
        checks[evaluation.check_name] = evaluation.passed
        if evaluation.check_name == "group_counts":
            strata = evaluation.metadata["strata"].value
print(json.dumps({"checks": checks, "group_counts": strata}))
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """Check outcomes and the DuckDB file, after materialising 12 subjects: 6 dcm and 6 nor."""
    tmp = tmp_path_factory.mktemp("acdc_pathology")
    root = write_acdc_cohort(tmp / "raw", n=12)
    environment = {**os.environ, "CMRBIAS_STUDY_FILE": str(STUDY_FILE)}
    run = subprocess.run(
        [sys.executable, "-c", MATERIALIZE, str(STUDY_FILE), str(root), str(tmp / "work")]
        + list(PARTITIONS),
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout.splitlines()[-1]), tmp / "work" / "cmrbias_tiny.duckdb"


def table(database: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as db:
        return db.sql(f"select * from cmrbias.{name}").pl()


def test_split_checks_pass(study) -> None:
    checks = study[0]["checks"]
    assert {name: checks[name] for name in SPLIT_CHECKS} == dict.fromkeys(SPLIT_CHECKS, True)


def test_group_counts_needs_half_the_test_set_plus_the_training_set_per_group(study) -> None:
    # tiny: 4 / 2 + 4 = 6 per group; the fixture has no hcm, minf or rv, which the check warns of.
    strata = study[0]["group_counts"]
    assert r"| pathology\_dcm | pathology=dcm | 6 | 6 | True |" in strata
    assert r"| pathology\_dcm | pathology=nor | 6 | 6 | True |" in strata
    assert r"| pathology\_hcm | pathology=hcm | 6 | 0 | False |" in strata
    assert study[0]["checks"]["group_counts"] is False


def test_test_set_is_half_each_pathology_without_held_values(study) -> None:
    tests = table(study[1], "test_set")
    assert tests["experiment"].unique().to_list() == ["pathology_dcm"]
    assert tests.group_by("group").len().sort("group").rows() == [("dcm", 2), ("nor", 2)]
    assert tests["held"].null_count() == tests.height


def test_training_splits_are_exact_and_disjoint_from_the_test_set(study) -> None:
    database = study[1]
    training = table(database, "training_split")
    counts = training.group_by("ratio", "group").len().sort("ratio", "group").rows()
    assert counts == [(25, "dcm", 1), (25, "nor", 3), (100, "dcm", 4)]
    assert set(training["subject_id"]).isdisjoint(table(database, "test_set")["subject_id"])
    manifest = table(database, "subject_manifest")
    assert set(training["subject_id"]) <= set(manifest["subject_id"])
    dcm_at = {r: set(training.filter(ratio=r, group="dcm")["subject_id"]) for r in (25, 100)}
    assert dcm_at[25] < dcm_at[100]


def test_folds_hold_every_training_subject_once(study) -> None:
    folds = table(study[1], "cv_folds")
    assert folds.group_by("ratio").len().sort("ratio").rows() == [(25, 4), (100, 4)]
    assert folds.group_by("ratio", "fold").len()["len"].to_list() == [2, 2, 2, 2]
