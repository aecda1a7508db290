"""The study's findings in words: each experiment's group gap by training ratio, and its test;
with repeated draws, whether each gap holds across them (a gap is called established only when
`repeat_summary` says so), and with one draw, that every gap rests on it."""

import polars as pl

from cmrbias_dagster.lib.analysis.repeats import SCHEMA
from cmrbias_dagster.lib.design.study import StudyDesign

ONE_DRAW = (
    "Each gap above rests on one training draw per experiment and ratio (repeats: 1): whether it "
    'holds for another draw is untested (docs/study.md, "Repeated draws").'
)


def group_gaps(median_table: pl.DataFrame, comparisons: pl.DataFrame) -> pl.DataFrame:
    """Per experiment and ratio: both groups' median overall DSC, the gap (first minus second
    group) and the Mann-Whitney U p-value (raw and Holm) with stars."""
    overall = median_table.filter(pl.col("class") == "overall")
    tests = comparisons.filter(pl.col("class") == "overall")
    first = overall.join(
        tests.select("experiment", "ratio", "group_a", "group_b", "p_value", "p_holm", "stars"),
        left_on=["experiment", "ratio", "group"],
        right_on=["experiment", "ratio", "group_a"],
    ).rename({"median_dsc": "median_a"})
    second = overall.select(
        "experiment",
        "ratio",
        pl.col("group").alias("group_b"),
        pl.col("median_dsc").alias("median_b"),
    )
    return (
        first.join(second, on=["experiment", "ratio", "group_b"])
        .select(
            "experiment",
            "ratio",
            pl.col("group").alias("group_a"),
            "group_b",
            "median_a",
            "median_b",
            (pl.col("median_a") - pl.col("median_b")).alias("gap"),
            "p_value",
            "p_holm",
            "stars",
        )
        .sort("experiment", "ratio")
    )


def study_findings(
    median_table: pl.DataFrame,
    comparisons: pl.DataFrame,
    design: StudyDesign,
    ratio_dependence: pl.DataFrame | None = None,
    convergence: pl.DataFrame | None = None,
    repeat_summary: pl.DataFrame | None = None,
) -> list[str]:
    """One paragraph per experiment: the first group's median DSC at the lowest and highest share
    it was evaluated at; where the groups differ significantly (Mann-Whitney U, Holm-adjusted
    p <= 0.05 within the experiment) and, with repeats, whether each such gap is established
    across them (`repeat_summary`'s verdict; a base experiment's paragraph lists every ratio's);
    whether the gap moves with the share (ratio_dependence's overall row); and whether every
    model of the experiment passed the convergence check. With one draw, a last sentence says
    that each gap rests on it."""
    gaps = group_gaps(median_table, comparisons)
    verdicts = repeat_summary if repeat_summary is not None else pl.DataFrame(schema=SCHEMA)
    sentences = []
    for experiment in design.experiments:
        rows = gaps.filter(pl.col("experiment") == experiment.name).sort("ratio")
        replication = verdicts.filter(pl.col("experiment") == experiment.base)
        if rows.is_empty():
            sentences.append(f"{experiment.name}: not evaluated yet.")
            continue
        low, high = rows.row(0, named=True), rows.row(-1, named=True)
        where = significant_ratios(rows, replication if design.repeats > 1 else None)
        sentence = (
            f"{experiment.name}: {low['group_a']} median DSC {low['median_a']:.3f} at "
            f"{low['ratio']} % {low['group_a']} in training (vs {low['median_b']:.3f} for "
            f"{low['group_b']}) and {high['median_a']:.3f} at {high['ratio']} %; the groups "
            f"differ significantly at {where}."
        )
        if design.repeats > 1 and experiment.repeat == 1:
            sentence += " " + replication_sentence(replication, design.repeats)
        if ratio_dependence is not None:
            sentence += " " + share_sentence(ratio_dependence, experiment.name)
        if convergence is not None:
            sentence += " " + convergence_sentence(convergence, experiment.name)
        sentences.append(sentence)
    if design.repeats == 1 and not gaps.is_empty():
        sentences.append(ONE_DRAW)
    return sentences


def significant_ratios(rows: pl.DataFrame, replication: pl.DataFrame | None) -> str:
    """The ratios where the groups differ (Holm p <= 0.05) with stars and p, each with whether
    the gap is established across repeats when `replication` (repeat_summary rows) is given."""
    significant = rows.filter(pl.col("p_holm") <= 0.05)
    where = [
        f"{r} % ({s}, Holm p={p:.2g}"
        + ("" if replication is None else f"; {replication_phrase(replication, r)}")
        + ")"
        for r, s, p in significant.select("ratio", "stars", "p_holm").iter_rows()
    ]
    return ", ".join(where) or "no ratio"


def replication_phrase(replication: pl.DataFrame, ratio: int) -> str:
    """Whether a base experiment's gap at `ratio` is established across its repeats, from its
    `repeat_summary` rows; established only on that verdict."""
    rows = replication.filter(pl.col("ratio") == ratio)
    if rows.is_empty():
        return "not established across repeats: no repeat_summary verdict yet"
    row = rows.row(0, named=True)
    if row["verdict"] == "established":
        return f"established across {row['repeats']} repeats"
    return (
        f"not established across repeats: {row['verdict']}, "
        f"{row['significant_repeats']} of {row['repeats']} evaluated repeats significant"
    )


def replication_sentence(replication: pl.DataFrame, repeats: int) -> str:
    """Each ratio of a base experiment grouped by its verdict over the repeats."""
    if replication.is_empty():
        return f"Whether the gaps hold across the {repeats} draws needs repeat_summary."
    by_verdict = replication.sort("ratio").group_by("verdict", maintain_order=True).agg("ratio")
    parts = "; ".join(
        f"{verdict} at {', '.join(f'{r} %' for r in ratios)}"
        for verdict, ratios in by_verdict.iter_rows()
    )
    return f"Verdict across the {repeats} draws (repeat_summary): {parts}."


def share_sentence(ratio_dependence: pl.DataFrame, experiment: str) -> str:
    """Whether the experiment's overall gap moves with the first group's training share."""
    rows = ratio_dependence.filter(
        (pl.col("experiment") == experiment) & (pl.col("class") == "overall")
    )
    if rows.is_empty():
        return "Whether the gap moves with the share needs at least two evaluated ratios."
    row = rows.row(0, named=True)
    trend = (
        f"gap slope {100 * row['gap_slope']:+.1f} DSC points from 0 to 100 % share "
        f"(95 % CI {100 * row['ci_low']:+.1f} to {100 * row['ci_high']:+.1f}, "
        f"Holm p={row['p_holm']:.2g})"
    )
    verdicts = {
        "share_dependent": "The gap moves with the training share: imbalance bias",
        "reverse": "The gap moves against the training share",
        "constant": "The gap does not move with the training share, so it is not imbalance "
        "bias (a harder group, or under-trained models)",
    }
    return f"{verdicts[row['verdict']]}; {trend}."


def convergence_sentence(convergence: pl.DataFrame, experiment: str) -> str:
    """Whether every model of the experiment passed the convergence check, worded as what the
    check measures: a plateau under the schedule, not a model trained enough."""
    models = convergence.filter(pl.col("experiment") == experiment)
    if models.is_empty():
        return "No model of this experiment has a convergence record."
    failed = models.filter(~pl.col("passed"))
    if failed.is_empty():
        return (
            f"All {models.height} models passed the convergence check: their curves reached a "
            "plateau under their schedule, which does not show that longer training would leave "
            "the gaps unchanged."
        )
    which = ", ".join(f"{r} % fold {f}" for r, f in failed.select("ratio", "fold").iter_rows())
    return (
        f"{failed.height} of {models.height} models did not pass the convergence check "
        f"({which}): their curves reached no plateau under their schedule (still learning or "
        "collapsing), so its gaps may reflect under-training."
    )
