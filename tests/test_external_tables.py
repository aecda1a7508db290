"""The side-by-side tables of external test cohorts on planted scores (pure library)."""

import polars as pl
import yaml

from cmrbias_dagster.lib.design.study import parse_study_design
from cmrbias_dagster.lib.design.study_file import DEFAULT_STUDY_FILE
from cmrbias_dagster.lib.external import tables
from cmrbias_dagster.lib.report.external_cohorts import external_cohorts_section

DESIGN = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())


def planted(cohort: str, groups: dict[str | None, float], n: int = 6) -> pl.DataFrame:
    """Overall scores of race_black at ratio 50: n subjects per group at a planted DSC."""
    rows = [
        {
            "experiment": "race_black",
            "ratio": 50,
            "subject_id": f"{cohort}{group}{i}",
            "group": group,
            "held": None,
            "class": "overall",
            "dsc": dsc + 0.001 * i,
            "test_cohort": cohort,
        }
        for group, dsc in groups.items()
        for i in range(n)
    ]
    return pl.DataFrame(rows, schema=tables.SCORE_SCHEMA)


def test_a_cohort_with_one_group_gets_no_gap_but_its_median():
    design = parse_study_design(DESIGN)
    internal = planted("internal", {"black": 0.80, "white": 0.90}).drop("test_cohort")
    external = pl.concat(
        [planted("shifted", {"black": 0.6, "white": 0.7}), planted("men", {None: 0.5})]
    )
    scores = tables.scores_by_test_cohort(internal, external)
    median = tables.median_dsc_by_test_cohort(scores, seed=1)
    alls = dict(
        median.filter(pl.col("group") == "all").select("test_cohort", "median_dsc").iter_rows()
    )
    assert alls["men"] == pl.Series([0.5 + 0.001 * i for i in range(6)]).median()
    assert set(median.filter(pl.col("test_cohort") == "men")["group"]) == {"all"}
    gaps = tables.gap_verdicts_by_test_cohort(scores, design)
    assert set(gaps["test_cohort"]) == {"internal", "shifted"}
    gap = gaps.filter(pl.col("test_cohort") == "shifted").row(0, named=True)
    assert gap["median_a"] < gap["median_b"]
    assert tables.uncompared(scores, design).to_dicts() == [
        {"test_cohort": "men", "experiment": "race_black", "groups_present": "none recorded"}
    ]


def test_the_report_section_exists_only_with_external_cohorts():
    plain = parse_study_design(DESIGN)
    assert external_cohorts_section(plain, pl.DataFrame(), pl.DataFrame()) is None
    external = parse_study_design({**DESIGN, "external_test": {"men": {"root": "x"}}})
    scores = tables.scores_by_test_cohort(
        planted("internal", {"black": 0.8, "white": 0.9}).drop("test_cohort"),
        planted("men", {None: 0.5}),
    )
    section = external_cohorts_section(
        external, tables.median_dsc_by_test_cohort(scores, 1), pl.DataFrame()
    )
    assert section.heading == "External test cohorts"
    wide = section.tables[0][1]
    assert {"internal", "men"} <= set(wide.columns)


def test_subjects_outside_the_experiments_groups_are_left_out_of_gaps_and_tests():
    """A cohort's asian subjects have no group in race_black: its gap and its Mann-Whitney U
    test read only its black and white subjects."""
    design = parse_study_design(DESIGN)
    internal = planted("internal", {"black": 0.80, "white": 0.90}).drop("test_cohort")
    mixed = planted("shifted", {"black": 0.6, "white": 0.7, None: 0.1})
    scores = tables.scores_by_test_cohort(internal, mixed)
    gap = tables.gap_verdicts_by_test_cohort(scores, design).filter(
        pl.col("test_cohort") == "shifted"
    )
    assert gap.height == 1
    assert round(gap["median_a"][0] - 0.6, 6) == round(gap["median_b"][0] - 0.7, 6)
    comparisons = tables.group_comparisons_by_test_cohort(scores, design)
    shifted = comparisons.filter(pl.col("test_cohort") == "shifted").row(0, named=True)
    assert (shifted["n_a"], shifted["n_b"]) == (6, 6)
