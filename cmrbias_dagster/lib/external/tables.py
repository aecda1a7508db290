"""The study's headline tables for every test cohort side by side: the study's own test set
(`internal`) and each external cohort, computed by the study's own functions on each cohort's
subject scores and stacked with a `test_cohort` column.

A group row exists only where the cohort records the group's attribute; a gap or a comparison
only where the cohort holds both groups (at least MIN_PER_GROUP subjects each, every ratio)."""

import polars as pl

from cmrbias_dagster.lib.analysis import comparisons, gaps, result_tables
from cmrbias_dagster.lib.design.external import INTERNAL_COHORT
from cmrbias_dagster.lib.design.study import StudyDesign

MIN_PER_GROUP = 2
SCORE_SCHEMA = {
    "experiment": pl.String,
    "ratio": pl.Int64,
    "subject_id": pl.String,
    "group": pl.String,
    "held": pl.String,
    "class": pl.String,
    "dsc": pl.Float64,
    "test_cohort": pl.String,
}

# The exported side-by-side tables as the report reads them back (assets/report.py).
MEDIAN_SCHEMA = {
    **dict.fromkeys(("test_cohort", "experiment"), pl.String),
    "ratio": pl.Int64,
    **dict.fromkeys(("class", "group"), pl.String),
    "n": pl.Int64,
    **dict.fromkeys(("median_dsc", "ci_low", "ci_high"), pl.Float64),
}
GAP_SCHEMA = {"test_cohort": pl.String, **gaps.SCHEMA}


def external_subject_scores(metrics: pl.DataFrame) -> pl.DataFrame:
    """`subject_scores` of each external cohort (its DSC over ED/ES, `overall` over the classes
    its truth labels), with `test_cohort`; a class no subject's truth labels has no row."""
    if metrics.is_empty():
        return pl.DataFrame(schema=SCORE_SCHEMA)
    parts = [
        result_tables.subject_scores(part.drop("test_cohort")).with_columns(
            test_cohort=pl.lit(cohort)
        )
        for (cohort,), part in metrics.group_by("test_cohort", maintain_order=True)
    ]
    scores = pl.concat(parts).filter(pl.col("dsc").is_not_null() & pl.col("dsc").is_not_nan())
    return (
        scores.select(list(SCORE_SCHEMA))
        .cast(SCORE_SCHEMA)
        .sort("test_cohort", "experiment", "ratio")
    )


def scores_by_test_cohort(internal: pl.DataFrame, external: pl.DataFrame) -> pl.DataFrame:
    """The study's subject scores as test cohort `internal`, then every external cohort's."""
    own = internal.with_columns(test_cohort=pl.lit(INTERNAL_COHORT)).select(list(SCORE_SCHEMA))
    return pl.concat(
        [own.cast(SCORE_SCHEMA), external.select(list(SCORE_SCHEMA)).cast(SCORE_SCHEMA)]
    )


def _cohorts(scores: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    return [(c, part) for (c,), part in scores.group_by("test_cohort", maintain_order=True)]


def _stacked(parts: list[pl.DataFrame], empty: pl.DataFrame) -> pl.DataFrame:
    parts = [part for part in parts if part.height]
    return pl.concat(parts, how="diagonal_relaxed") if parts else empty


def median_dsc_by_test_cohort(scores: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Table 2 (median DSC, bootstrap 95 % CI per group and `all`) per test cohort; a group row
    only for subjects whose cohort records the group."""
    parts = [
        result_tables.median_dsc_table(part.drop("test_cohort"), seed)
        .filter(pl.col("group").is_not_null())
        .select(pl.lit(cohort).alias("test_cohort"), pl.all())
        for cohort, part in _cohorts(scores)
    ]
    return _stacked(parts, pl.DataFrame(schema=MEDIAN_SCHEMA))


def comparable(scores: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """The rows with a group of the (experiment, class) cells where both of the experiment's groups
    have at least MIN_PER_GROUP subjects at every ratio: the only cells a gap can be read from."""
    counts = (
        scores.filter(pl.col("group").is_not_null())
        .group_by("experiment", "class", "ratio", "group")
        .agg(n=pl.col("subject_id").n_unique())
    )
    first_groups = pl.DataFrame(
        {
            "experiment": design.experiment_names,
            "groups": [list(e.groups) for e in design.experiments],
        }
    )
    cells = (
        counts.filter(pl.col("n") >= MIN_PER_GROUP)
        .group_by("experiment", "class", "ratio")
        .agg(present=pl.col("group"))
        .join(first_groups, on="experiment")
        .filter(pl.col("groups").list.set_difference("present").list.len() == 0)
        .select("experiment", "class", "ratio")
    )
    ratios = scores.group_by("experiment", "class").agg(ratios=pl.col("ratio").n_unique())
    complete = (
        cells.group_by("experiment", "class")
        .agg(ratios=pl.len())
        .join(ratios, on=["experiment", "class", "ratios"])
        .select("experiment", "class")
    )
    # Subjects outside the experiment's groups (asian subjects in race_black) have no group.
    return scores.filter(pl.col("group").is_not_null()).join(complete, on=["experiment", "class"])


def gap_verdicts_by_test_cohort(scores: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """The gap verdicts (gaps.gap_table) per test cohort, where the cohort holds both groups."""
    parts = [
        gaps.gap_table(
            comparable(part.drop("test_cohort"), design), design, design.equivalence_margin
        ).select(pl.lit(cohort).alias("test_cohort"), pl.all())
        for cohort, part in _cohorts(scores)
    ]
    return _stacked(parts, pl.DataFrame(schema=GAP_SCHEMA))


def group_comparisons_by_test_cohort(scores: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """Mann-Whitney U between the groups (comparisons.group_comparisons, Holm within each test
    cohort and experiment) per test cohort, where the cohort holds both groups."""
    parts = []
    for cohort, part in _cohorts(scores):
        held = comparable(part.drop("test_cohort"), design)
        if held.height:
            table = comparisons.group_comparisons(held, design.group_order())
            parts.append(table.select(pl.lit(cohort).alias("test_cohort"), pl.all()))
    return _stacked(parts, pl.DataFrame(schema={"test_cohort": pl.String}))


def uncompared(scores: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """Per test cohort and experiment without a comparable overall cell: the groups it holds."""
    rows = []
    for cohort, part in _cohorts(scores):
        overall = part.filter(pl.col("class") == "overall")
        read = set(comparable(overall.drop("test_cohort"), design)["experiment"])
        for experiment in design.experiment_names:
            if experiment in read:
                continue
            own = overall.filter(pl.col("experiment") == experiment)
            if own.height:
                groups = sorted(g for g in own["group"].unique().to_list() if g is not None)
                rows.append(
                    {
                        "test_cohort": cohort,
                        "experiment": experiment,
                        "groups_present": ", ".join(groups) or "none recorded",
                    }
                )
    schema = dict.fromkeys(("test_cohort", "experiment", "groups_present"), pl.String)
    return pl.DataFrame(rows, schema=schema)
