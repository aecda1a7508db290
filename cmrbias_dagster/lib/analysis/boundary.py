"""Boundary metrics by group: HD95 and ASSD (mm) given the DSC treatment, from the same functions
(Table 2's medians, the Mann-Whitney family, the two-level gaps, the share dependence), each with
the score column `hd95_mm` or `assd_mm` and a `metric` column in front.

- Per subject, a metric is the mean over the subject's cases (ED and ES; `overall` also over the
  three classes), as `subject_scores` does for DSC. A case where a structure is missing from the
  prediction or the truth has no distance (metrics.py): the subject's score of that class (and its
  `overall`) is then undefined (null), not the mean of the cases that remain, which would score a
  missed structure better than a poor one. Undefined subjects are left out of every test and
  counted (`undefined_cases` per subject, `n_undefined` per group), so a group that loses more
  structures shows there; DSC (0 for a missed structure) has no such gap.
- Lower is better: a gap is the first group minus the second, in mm, so a positive gap says the
  first group's boundaries lie farther from the truth; a falling gap over the shares (negative
  slope) is the first group gaining (`share dependent`).
- No equivalence verdict: the design's margin is in DSC units and means nothing in mm, so the
  verdicts are `established` or `not established` only (margin 0).
"""

import polars as pl

from cmrbias_dagster.lib.analysis import comparisons, gaps, ratio_dependence, result_tables
from cmrbias_dagster.lib.design.study import StudyDesign

METRICS = {"hd95_mm": "HD95", "assd_mm": "ASSD"}
# The verdicts' margin: none (module doc).
NO_EQUIVALENCE = 0.0
SUBJECT = [*result_tables.SUBJECT, "class"]
MEDIAN_SCHEMA = {
    "metric": pl.Utf8,
    "experiment": pl.Utf8,
    "ratio": pl.Int64,
    "class": pl.Utf8,
    "group": pl.Utf8,
    "n": pl.Int64,
    "n_undefined": pl.Int64,
    "median_mm": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
}
GAP_SCHEMA = {"metric": pl.Utf8, **gaps.SCHEMA}
TREND_SCHEMA = {"metric": pl.Utf8, **ratio_dependence.SCHEMA}


def subject_boundary_scores(metrics: pl.DataFrame) -> pl.DataFrame:
    """One row per experiment, ratio, subject and class (and `overall`): HD95 and ASSD averaged
    over the subject's cases, null when any of them has no distance, with the number of cases
    and of undefined ones."""
    undefined = ~pl.col("hd95_mm").is_finite().fill_null(False) | ~pl.col(
        "assd_mm"
    ).is_finite().fill_null(False)
    keys = result_tables.SUBJECT
    aggregates = [
        pl.len().cast(pl.Int64).alias("cases"),
        undefined.sum().cast(pl.Int64).alias("undefined_cases"),
        *(
            pl.when(undefined.any()).then(None).otherwise(pl.col(m).mean()).alias(m)
            for m in METRICS
        ),
    ]
    per_class = metrics.group_by(*keys, "class").agg(aggregates)
    overall = metrics.group_by(*keys).agg(aggregates).with_columns(pl.lit("overall").alias("class"))
    columns = [*SUBJECT, *METRICS, "cases", "undefined_cases"]
    return pl.concat([overall.select(columns), per_class.select(columns)]).sort(
        *result_tables.KEYS, "class", "subject_id"
    )


def boundary_median_table(scores: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Table 2 of each metric: median (mm) with its seeded bootstrap 95 % CI per experiment, ratio,
    class and group (and `all`), over the subjects with a defined score (`n`), beside the number
    left out as undefined (`n_undefined`)."""
    everyone = scores.with_columns(pl.lit("all").alias("group"))
    keys = ["experiment", "ratio", "class", "group"]
    tables = []
    for metric in METRICS:
        medians = result_tables.median_dsc_table(scores, seed, value=metric)
        missing = (
            pl.concat([scores, everyone])
            .group_by(keys)
            .agg(n_undefined=pl.col(metric).is_null().sum().cast(pl.Int64))
        )
        table = medians.rename({f"median_{metric}": "median_mm"}).join(missing, on=keys)
        table = table.with_columns(metric=pl.lit(metric)).select(list(MEDIAN_SCHEMA))
        tables.append(table.sort(keys))
    return pl.concat(tables).cast(MEDIAN_SCHEMA)


def boundary_comparisons(scores: pl.DataFrame, group_order: dict) -> pl.DataFrame:
    """The Mann-Whitney U between the groups of each metric at each ratio and class; Holm within
    each experiment and metric. `effect_size` > 0: the first group's distances tend to be
    larger (worse)."""
    tables = [
        comparisons.group_comparisons(scores, group_order, value=metric).select(
            pl.lit(metric).alias("metric"), pl.all()
        )
        for metric in METRICS
    ]
    return pl.concat(tables)


def boundary_gap_table(scores: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """Each metric's between-group gaps (first group's median minus the second's, mm) with their
    two-level CIs, Holm p within each base experiment and metric, and verdicts without
    equivalence."""
    tables = [
        gaps.gap_table(scores, design, NO_EQUIVALENCE, value=metric).select(
            pl.lit(metric).alias("metric"), pl.all()
        )
        for metric in METRICS
    ]
    return pl.concat(tables).cast(GAP_SCHEMA)


def boundary_ratio_dependence(scores: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """Each metric's share dependence: the gap slope in mm from 0 to 100 % share (negative: the
    first group gains), two-level CI, Holm per metric and class, verdict and trend."""
    tables = [
        ratio_dependence.ratio_dependence_table(
            scores, design, NO_EQUIVALENCE, value=metric, lower_is_better=True
        ).select(pl.lit(metric).alias("metric"), pl.all())
        for metric in METRICS
    ]
    return pl.concat(tables).cast(TREND_SCHEMA)


def millimetres(value: float) -> str:
    """A distance difference in mm, signed."""
    return f"{value:+.2f}"


def boundary_findings(verdicts: pl.DataFrame, trends: pl.DataFrame) -> list[str]:
    """One bullet per base experiment: for each metric, the overall gap's verdict by ratio (first
    group minus second, mm, 95 % CI) and its share trend."""
    overall = verdicts.filter(pl.col("class") == "overall").sort("metric", "ratio")
    bullets = []
    for (experiment,), part in overall.group_by("experiment", maintain_order=True):
        first = part.row(0, named=True)
        sentences = []
        for metric, label in METRICS.items():
            rows = part.filter(pl.col("metric") == metric)
            if rows.is_empty():
                continue
            cells = [
                f"{r['ratio']} % {millimetres(r['estimate'])} "
                f"[{millimetres(r['ci_low'])}, {millimetres(r['ci_high'])}] {r['verdict']}"
                for r in rows.iter_rows(named=True)
            ]
            sentences.append(
                f"{label} gap {'; '.join(cells)}{trend_clause(trends, experiment, metric)}."
            )
        bullets.append(
            f"{experiment} boundaries ({first['group_a']} minus {first['group_b']}, mm, lower is "
            f"better, no equivalence margin in mm): {' '.join(sentences)}"
        )
    return bullets


def trend_clause(trends: pl.DataFrame, experiment: str, metric: str) -> str:
    """`, share trend: reverse, slope +1.20 mm [...]` for the metric's overall trend, or ''."""
    rows = trends.filter(
        (pl.col("experiment") == experiment)
        & (pl.col("metric") == metric)
        & (pl.col("class") == "overall")
    )
    if rows.is_empty():
        return ""
    row = rows.row(0, named=True)
    return (
        f"; share trend: {row['trend']}, slope {millimetres(row['estimate'])} mm "
        f"[{millimetres(row['ci_low'])}, {millimetres(row['ci_high'])}]"
    )
