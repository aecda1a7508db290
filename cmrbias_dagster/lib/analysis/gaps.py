"""Between-group gaps with both sources of variation: per base experiment (its repeats pooled),
ratio and class, the first group's median DSC minus the second's as a two-level estimate
(two_level.py), Holm-adjusted within the base experiment (every ratio and class, the family of
`group_comparisons`) and a verdict in the study's vocabulary.
"""

from collections.abc import Iterator

import polars as pl

from cmrbias_dagster.lib.analysis.contrasts import (
    ScoreCube,
    evaluated_repeats,
    group_medians,
    median_gap,
    score_cube,
)
from cmrbias_dagster.lib.analysis.two_level import TwoLevelEstimate, holm_adjusted, verdict
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.study import StudyDesign

ESTIMATE = ("estimate", "se", "df", "ci_low", "ci_high", "p_value")
SCHEMA = {
    **dict.fromkeys(("experiment", "class", "group_a", "group_b"), pl.Utf8),
    **dict.fromkeys(("ratio", "repeats"), pl.Int64),
    **dict.fromkeys(("median_a", "median_b", *ESTIMATE, "p_holm"), pl.Float64),
    "verdict": pl.Utf8,
}
# The columns a reader compares first.
SUMMARY = ("experiment", "ratio", "repeats", "median_a", "median_b", "estimate", "ci_low")
SUMMARY += ("ci_high", "p_holm", "verdict")


def repeat_names(design: StudyDesign) -> dict[str, list[Experiment]]:
    """Each base experiment's repeats (repeat 1 first), in file order."""
    named: dict[str, list[Experiment]] = {}
    for experiment in design.experiments:
        named.setdefault(experiment.base, []).append(experiment)
    return {base: sorted(runs, key=lambda e: e.repeat) for base, runs in named.items()}


def experiment_cubes(
    scores: pl.DataFrame, design: StudyDesign, value: str = "dsc"
) -> Iterator[tuple[Experiment, str, ScoreCube]]:
    """(repeat 1's experiment, class, cube over its repeats) for every evaluated base and class,
    of the score column `value`."""
    for runs in repeat_names(design).values():
        names = [e.name for e in runs]
        own = scores.filter(pl.col("experiment").is_in(names))
        for name in own["class"].unique(maintain_order=True).to_list():
            yield runs[0], name, score_cube(own, names, runs[0].groups[0], name, value)


def gap_table(
    scores: pl.DataFrame, design: StudyDesign, margin: float, value: str = "dsc"
) -> pl.DataFrame:
    """One row per base experiment, evaluated ratio and class: the repeats it rests on, each
    group's median DSC (mean over repeats), the gap's two-level estimate, CI, p, Holm p and
    verdict (margin: the equivalence margin, a DSC fraction; 0 gives no equivalence verdict).
    `value` names another score column (the gap is then in its units)."""
    rows: list[dict] = []
    for experiment, cells in _by_base(scores, design, value).items():
        adjusted = holm_adjusted([estimate for *_, estimate in cells])
        for (name, ratio, medians, estimate), p_holm in zip(cells, adjusted, strict=True):
            rows.append(
                {
                    "experiment": experiment.base,
                    "class": name,
                    "group_a": experiment.groups[0],
                    "group_b": experiment.groups[1],
                    "ratio": ratio,
                    "repeats": estimate.repeats,
                    **medians,
                    **estimate_columns(estimate),
                    "p_holm": p_holm,
                    "verdict": verdict(estimate, p_holm, margin),
                }
            )
    return pl.DataFrame(rows, schema=SCHEMA).sort("experiment", "class", "ratio")


def estimate_columns(estimate: TwoLevelEstimate) -> dict[str, float]:
    """The estimate's columns of a table (ESTIMATE)."""
    return {key: getattr(estimate, key) for key in ESTIMATE}


def _by_base(
    scores: pl.DataFrame, design: StudyDesign, value: str
) -> dict[Experiment, list[tuple[str, int, dict, TwoLevelEstimate]]]:
    cells: dict[Experiment, list] = {}
    for experiment, name, cube in experiment_cubes(scores, design, value):
        for k, ratio in enumerate(cube.ratios):
            a, b = group_medians(cube.dsc[k][evaluated_repeats(cube, ratio)], cube.first)
            medians = {"median_a": float(a.mean()), "median_b": float(b.mean())}
            estimate = median_gap(cube, ratio, design.seed)
            cells.setdefault(experiment, []).append((name, ratio, medians, estimate))
    return cells
