"""What a mitigation strategy does, with both sources of variation: per strategy and ratio, the
paired difference variant minus baseline on the same test subjects (repeat r of the variant
against repeat r of its baseline, the same training draws) for each group's median overall DSC and
for the gap, as two-level estimates (two_level.py), Holm-adjusted within the strategy's experiment.
A strategy "narrows the gap" only when the gap's change is established and opposite in sign to the
baseline's gap.
"""

import polars as pl

from cmrbias_dagster.lib.analysis.contrasts import (
    evaluated_repeats,
    group_medians,
    score_cube,
    strategy_effects,
)
from cmrbias_dagster.lib.analysis.gaps import ESTIMATE, estimate_columns, repeat_names
from cmrbias_dagster.lib.analysis.mitigation import mitigation_families
from cmrbias_dagster.lib.analysis.two_level import holm_adjusted, is_established, verdict
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.study import StudyDesign

SCHEMA = {
    **dict.fromkeys(("experiment", "varies", "strategy", "effect"), pl.Utf8),
    **dict.fromkeys(("ratio", "repeats"), pl.Int64),
    "baseline_gap": pl.Float64,
    **dict.fromkeys((*ESTIMATE, "p_holm"), pl.Float64),
    **dict.fromkeys(("verdict", "reading"), pl.Utf8),
}
SUMMARY = ("experiment", "ratio", "effect", "estimate", "ci_low", "ci_high", "p_holm", "reading")


def strategy_effect_table(scores: pl.DataFrame, design: StudyDesign, margin: float) -> pl.DataFrame:
    """One row per mitigated experiment (its repeats pooled), evaluated ratio and effect (each
    group's median DSC, named by the group, and `gap`): the estimate, CI, p, Holm p, verdict and
    what it reads as."""
    runs = repeat_names(design)
    rows = []
    for base, variants in mitigation_families(design):
        if base.repeat != 1:
            continue
        for variant in variants:
            rows += _variant_rows(scores, runs[variant.base], runs[base.base], design.seed, margin)
    return pl.DataFrame(rows, schema=SCHEMA).sort("experiment", "ratio", "effect")


def effect_reading(effect: str, said: str, estimate: float, baseline_gap: float) -> str:
    """A gap effect narrows or widens the gap when established (by its sign against the baseline
    gap's); a group effect raises or lowers that group's DSC; otherwise nothing is claimed."""
    if not is_established(said):
        return f"{'gap' if effect == 'gap' else effect + ' DSC'} change not established"
    if effect == "gap":
        return "narrows the gap" if estimate * baseline_gap < 0 else "widens the gap"
    return f"{'raises' if estimate > 0 else 'lowers'} {effect} DSC"


def _variant_rows(
    scores: pl.DataFrame,
    variant_runs: list[Experiment],
    baseline_runs: list[Experiment],
    seed: int,
    margin: float,
) -> list[dict]:
    variant = variant_runs[0]
    first = variant.groups[0]
    names_v, names_b = [e.name for e in variant_runs], [e.name for e in baseline_runs]
    v = score_cube(scores, names_v, first, "overall")
    b = score_cube(scores, names_b[: len(names_v)], first, "overall")
    cells = []
    for ratio in (r for r in v.ratios if r in b.ratios):
        effects = strategy_effects(v, b, ratio, seed)
        medians_a, medians_b = group_medians(
            b.dsc[b.ratios.index(ratio)][evaluated_repeats(b, ratio)], b.first
        )
        baseline_gap = float((medians_a - medians_b).mean())
        for key, name in (("a", variant.groups[0]), ("b", variant.groups[1]), ("gap", "gap")):
            cells.append((ratio, name, baseline_gap, effects[key]))
    adjusted = holm_adjusted([estimate for *_, estimate in cells])
    rows = []
    for (ratio, name, baseline_gap, estimate), p_holm in zip(cells, adjusted, strict=True):
        said = verdict(estimate, p_holm, margin)
        rows.append(
            {
                "experiment": variant.base,
                "varies": baseline_runs[0].base,
                "strategy": variant.mitigation.label,
                "effect": name,
                "ratio": ratio,
                "repeats": estimate.repeats,
                "baseline_gap": baseline_gap,
                **estimate_columns(estimate),
                "p_holm": p_holm,
                "verdict": said,
                "reading": effect_reading(name, said, estimate.estimate, baseline_gap),
            }
        )
    return rows
