"""The study's findings in words: each experiment's group gap by training ratio, and its test."""

import polars as pl

from cmrbias_dagster.lib.design.study import StudyDesign


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
    median_table: pl.DataFrame, comparisons: pl.DataFrame, design: StudyDesign
) -> list[str]:
    """One sentence per experiment: the first group's median DSC at the lowest and highest share
    it was evaluated at, and where the groups differ significantly (Mann-Whitney U, Holm-adjusted
    p <= 0.05 within the experiment)."""
    gaps = group_gaps(median_table, comparisons)
    sentences = []
    for experiment in design.experiment_names:
        rows = gaps.filter(pl.col("experiment") == experiment).sort("ratio")
        if rows.is_empty():
            sentences.append(f"{experiment}: not evaluated yet.")
            continue
        low, high = rows.row(0, named=True), rows.row(-1, named=True)
        significant = rows.filter(pl.col("p_holm") <= 0.05)
        where = (
            ", ".join(
                f"{r} % ({s}, Holm p={p:.2g})"
                for r, s, p in significant.select("ratio", "stars", "p_holm").iter_rows()
            )
            or "no ratio"
        )
        sentences.append(
            f"{experiment}: {low['group_a']} median DSC {low['median_a']:.3f} at "
            f"{low['ratio']} % {low['group_a']} in training (vs {low['median_b']:.3f} for "
            f"{low['group_b']}) and {high['median_a']:.3f} at {high['ratio']} %; the groups "
            f"differ significantly at {where}."
        )
    return sentences
