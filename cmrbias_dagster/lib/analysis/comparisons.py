"""Families of statistical comparisons over per-subject scores, and fairness per ratio.

Families for the Holm correction: within one experiment, all group comparisons (every ratio and
class) form one family, and all between-ratio comparisons form another.
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from itertools import combinations

import polars as pl

from cmrbias_dagster.lib.analysis.fairness import accuracy_parity_ratio, fairness_metrics
from cmrbias_dagster.lib.analysis.statistics import (
    GroupComparison,
    adjust_holm,
    mann_whitney,
    wilcoxon_paired,
)


def group_comparisons(
    scores: pl.DataFrame, group_order: Mapping[str, Sequence[str]], value: str = "dsc"
) -> pl.DataFrame:
    """Mann-Whitney U (two-sided) between an experiment's two groups at each ratio and class, on
    the score column `value` (nulls dropped)."""
    rows = []
    for experiment, part in scores.group_by("experiment", maintain_order=True):
        first, second = group_order[experiment[0]]
        keys, tests = [], []
        for (ratio, name), cell in part.group_by("ratio", "class", maintain_order=True):
            a = cell.filter(pl.col("group") == first)[value].drop_nulls()
            b = cell.filter(pl.col("group") == second)[value].drop_nulls()
            keys.append({"ratio": ratio, "class": name, "group_a": first, "group_b": second})
            tests.append(mann_whitney(a, b))
        rows += _rows(experiment[0], keys, tests)
    return _frame(rows, ["experiment", "ratio", "class", "group_a", "group_b"])


def ratio_comparisons(scores: pl.DataFrame) -> pl.DataFrame:
    """Wilcoxon signed-rank between every two ratios for the same group and class: the same test
    subjects segmented by two models. Effect positive when the lower ratio's model scores higher."""
    rows = []
    for experiment, part in scores.group_by("experiment", maintain_order=True):
        keys, tests = [], []
        ratios = sorted(part["ratio"].unique())
        for (group, name), cell in part.group_by("group", "class", maintain_order=True):
            by_ratio = {r: cell.filter(pl.col("ratio") == r).sort("subject_id") for r in ratios}
            for low, high in combinations(ratios, 2):
                paired = by_ratio[low].join(by_ratio[high], on="subject_id", suffix="_b")
                keys.append({"group": group, "class": name, "ratio_a": low, "ratio_b": high})
                tests.append(wilcoxon_paired(paired["dsc"], paired["dsc_b"]))
        rows += _rows(experiment[0], keys, tests)
    return _frame(rows, ["experiment", "group", "class", "ratio_a", "ratio_b"])


def _frame(rows: list[dict], keys: list[str]) -> pl.DataFrame:
    """The comparisons sorted by their keys; with none (e.g. a single ratio evaluated so far), an
    empty table with the same columns."""
    if rows:
        return pl.DataFrame(rows).sort(keys)
    integer = {"ratio", "ratio_a", "ratio_b", "n_a", "n_b"}
    names = keys + [f.name for f in fields(GroupComparison)]
    text = {"experiment", "class", "group", "group_a", "group_b", "test", "stars"}
    dtypes = {n: pl.Int64 if n in integer else pl.Utf8 if n in text else pl.Float64 for n in names}
    return pl.DataFrame(schema=dtypes)


def _rows(experiment: str, keys: list[dict], tests: list[GroupComparison]) -> list[dict]:
    return [
        {"experiment": experiment, **key, **asdict(test)}
        for key, test in zip(keys, adjust_holm(tests), strict=True)
    ]


def fairness_table(scores: pl.DataFrame) -> pl.DataFrame:
    """Fairness of the overall DSC per experiment and ratio (SD of group means, SER, ES-Dice,
    parity gap), with the group medians it was computed from."""
    rows = []
    overall = scores.filter(pl.col("class") == "overall")
    for (experiment, ratio), part in overall.group_by("experiment", "ratio"):
        metrics = fairness_metrics(part["dsc"].to_list(), part["group"].to_list())
        rows.append({"experiment": experiment, "ratio": ratio, **metrics})
    return pl.DataFrame(rows).sort("experiment", "ratio")


def parity_ratios(scores: pl.DataFrame) -> pl.DataFrame:
    """Per experiment: the training ratio at which the groups' median overall DSC are closest."""
    medians = (
        scores.filter(pl.col("class") == "overall")
        .group_by("experiment", "ratio", "group")
        .agg(pl.col("dsc").median())
    )
    rows = []
    for experiment, part in medians.group_by("experiment"):
        by_ratio: dict[int, dict[str, float]] = {}
        for ratio, group, median in part.select("ratio", "group", "dsc").iter_rows():
            by_ratio.setdefault(ratio, {})[group] = median
        rows.append({"experiment": experiment[0], "parity_ratio": accuracy_parity_ratio(by_ratio)})
    return pl.DataFrame(rows).sort("experiment")
