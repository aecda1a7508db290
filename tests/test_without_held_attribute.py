"""Experiments that hold nothing 50/50 (ACDC pathology): draws, folds, checks and Table 3."""

from collections import Counter

import polars as pl
import pytest

from cmrbias_dagster.lib.analysis import result_tables
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.splits import checks as split_checks
from cmrbias_dagster.lib.splits.checks import stratum_shortfalls
from cmrbias_dagster.lib.splits.folds import assign_folds
from cmrbias_dagster.lib.splits.sampling import (
    InfeasibleDesignError,
    draw_test_set,
    draw_training_split,
    stratum_counts,
)
from cmrbias_dagster.resources.study import PROJECT_ROOT

ACDC_DESIGN = load_study_design(PROJECT_ROOT / "docs" / "study_acdc_pathology.yaml")
DCM = ACDC_DESIGN.experiment("pathology_dcm")
SEED = ACDC_DESIGN.seed
PATHOLOGIES = ("dcm", "hcm", "minf", "nor", "rv")


def acdc_manifest(per_group: int = 20) -> pl.DataFrame:
    """`per_group` subjects of each ACDC pathology, ids `patientNNN` as ACDC numbers them."""
    rows = [
        (f"patient{g * per_group + i + 1:03d}", pathology, "")
        for g, pathology in enumerate(PATHOLOGIES)
        for i in range(per_group)
    ]
    return pl.DataFrame(
        rows, schema=["subject_id", "pathology", "missing_classes"], orient="row"
    ).with_columns(sex=pl.lit(None, pl.String), race=pl.lit(None, pl.String))


def group_sizes(frame: pl.DataFrame) -> dict[str, int]:
    return dict(Counter(frame["group"].to_list()))


@pytest.mark.parametrize("experiment", ACDC_DESIGN.experiments, ids=ACDC_DESIGN.experiment_names)
@pytest.mark.parametrize("profile", ACDC_DESIGN.profiles, ids=lambda p: p.name)
@pytest.mark.parametrize("ratio", ACDC_DESIGN.ratios)
def test_example_design_draws_exact_counts_from_acdc(experiment, profile, ratio: int) -> None:
    manifest = acdc_manifest()
    test_set = draw_test_set(manifest, experiment, profile.test_size, SEED)
    split = draw_training_split(
        manifest, test_set["subject_id"], experiment, ratio, profile.train_size, SEED
    )
    first, second = experiment.groups
    n_first = profile.train_size * ratio // 100
    expected = {first: n_first, second: profile.train_size - n_first}
    assert group_sizes(split) == {group: n for group, n in expected.items() if n}
    assert group_sizes(test_set) == dict.fromkeys(experiment.groups, profile.test_size // 2)
    assert set(split["subject_id"]).isdisjoint(test_set["subject_id"])
    assert split["held"].null_count() == split.height and test_set["held"].dtype == pl.String
    assert split.columns == ["subject_id", "group", "held", "stratum_rank", "experiment", "ratio"]
    assert not split_checks.count_mismatches(split, experiment, ratio, profile.train_size)
    assert split_checks.is_balanced(test_set, experiment)


def test_draws_are_deterministic_and_follow_the_seed() -> None:
    manifest = acdc_manifest()

    def draw(seed: int) -> tuple[list[str], list[str]]:
        test_set = draw_test_set(manifest, DCM, 8, seed)
        split = draw_training_split(manifest, test_set["subject_id"], DCM, 50, 12, seed)
        return test_set["subject_id"].to_list(), split["subject_id"].to_list()

    assert draw(SEED) == draw(SEED) != draw(SEED + 1)


def test_splits_of_one_experiment_are_nested() -> None:
    manifest = acdc_manifest()
    test_ids = draw_test_set(manifest, DCM, 8, SEED)["subject_id"]
    dcm = [
        set(
            draw_training_split(manifest, test_ids, DCM, r, 12, SEED).filter(group="dcm")[
                "subject_id"
            ]
        )
        for r in (25, 50, 75)
    ]
    assert dcm[0] < dcm[1] < dcm[2]


def test_stratum_counts_without_held_attribute() -> None:
    assert stratum_counts(DCM, 25, 12) == {("dcm", None): 3, ("nor", None): 9}
    assert stratum_counts(DCM, 25, 4) == {("dcm", None): 1, ("nor", None): 3}
    with pytest.raises(InfeasibleDesignError, match="training size 6 does not split into integer"):
        stratum_counts(DCM, 25, 6)
    with pytest.raises(InfeasibleDesignError, match="size 5 is not a positive multiple of 2"):
        draw_test_set(acdc_manifest(), DCM, 5, SEED)


def test_too_few_subjects_names_the_group() -> None:
    manifest = acdc_manifest().filter(
        (pl.col("pathology") != "dcm") | (pl.col("subject_id") <= "patient010")
    )
    test_ids = draw_test_set(manifest, DCM, 8, SEED)["subject_id"]
    with pytest.raises(
        InfeasibleDesignError,
        match=r"'pathology_dcm', ratio 100: too few subjects in pathology=dcm: needed 12, "
        r"available 6$",
    ):
        draw_training_split(manifest, test_ids, DCM, 100, 12, SEED)


def test_missing_pathology_column_is_named() -> None:
    with pytest.raises(InfeasibleDesignError, match=r"manifest lacks columns \['pathology'\]"):
        draw_test_set(acdc_manifest().drop("pathology"), DCM, 8, SEED)


@pytest.mark.parametrize(("n_first", "n_second"), [(0, 12), (3, 9), (6, 6), (12, 0), (1, 3)])
def test_folds_stratify_by_group_alone(n_first: int, n_second: int) -> None:
    split = pl.DataFrame(
        {
            "subject_id": [f"s{i:02d}" for i in range(n_first + n_second)],
            "group": ["dcm"] * n_first + ["nor"] * n_second,
            "held": pl.Series([None] * (n_first + n_second), dtype=pl.String),
        }
    )
    folded = assign_folds(split, 2, seed=SEED)
    assert folded.drop("fold").equals(split)
    assert folded.equals(assign_folds(split, 2, seed=SEED))
    for _, members in folded.group_by("group"):
        sizes = Counter(members["fold"].to_list()).values()
        assert max(sizes) - min(sizes, default=0) <= 1
    sizes = Counter(folded["fold"].to_list()).values()
    assert max(sizes) - min(sizes) <= 1


def test_cohort_check_needs_test_share_plus_whole_training_set() -> None:
    shortfalls = stratum_shortfalls(acdc_manifest(15), ACDC_DESIGN, "quick")
    dcm = shortfalls.filter(experiment="pathology_dcm")
    assert dcm["stratum"].to_list() == ["pathology=dcm", "pathology=nor"]
    assert dcm["needed"].to_list() == [8 // 2 + 12] * 2 and dcm["available"].to_list() == [15] * 2
    assert stratum_shortfalls(acdc_manifest(20), ACDC_DESIGN, "quick")["enough"].all()


def test_table3_has_no_rows_for_an_experiment_without_held_attribute() -> None:
    rows = [
        (experiment, 50, f"{group}{i}", group, held, 0.8 + i / 100)
        for experiment, held_values in (("race_black", ("f", "m")), ("pathology_dcm", (None,)))
        for group in ("a", "b")
        for held in held_values
        for i in range(4)
    ]
    scores = pl.DataFrame(
        rows, schema=["experiment", "ratio", "subject_id", "group", "held", "dsc"], orient="row"
    ).with_columns(**{"class": pl.lit("overall")})
    table = result_tables.intersectional_table(scores)
    assert set(table["experiment"]) == {"race_black"} and table.height == 4
    assert result_tables.experiments_without_held(scores) == ["pathology_dcm"]
    only_unheld = result_tables.intersectional_table(scores.filter(experiment="pathology_dcm"))
    assert only_unheld.is_empty() and "median_dsc" in only_unheld.columns


def test_stratum_label_names_the_held_attribute_only_when_there_is_one() -> None:
    held = Experiment("sex", "sex", ("female", "male"), "race", ("black", "white"))
    assert held.stratum_label("female", "black") == "sex=female, race=black"
    assert DCM.stratum_label("dcm", None) == "pathology=dcm"
    assert DCM.strata == (("dcm", None), ("nor", None))
