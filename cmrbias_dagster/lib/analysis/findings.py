"""The study's findings: a headline table (each experiment's group medians by ratio, the gap with
its two-level 95 % CI and verdict, and the share dependence) and one bullet per experiment, in the
verdict vocabulary of two_level.py (established, not established, equivalent within the margin;
with one training draw, every verdict says that training noise is not included)."""

import polars as pl

from cmrbias_dagster.lib.analysis.two_level import NOT_ESTABLISHED, ONE_DRAW, is_established
from cmrbias_dagster.lib.design.study import StudyDesign


def points(value: float) -> str:
    """A DSC difference in points (hundredths), signed."""
    return f"{100 * value:+.1f}"


def gap_cell(row: dict) -> str:
    """`-2.4 [-3.1, -1.7] established`: the gap in points, its CI and the verdict without the
    one-draw caveat (the table says it once)."""
    verdict = row["verdict"].replace(f" ({ONE_DRAW})", "")
    return (
        f"{points(row['estimate'])} [{points(row['ci_low'])}, {points(row['ci_high'])}] {verdict}"
    )


def headline_table(gap_verdicts: pl.DataFrame, ratio_dependence: pl.DataFrame) -> pl.DataFrame:
    """Per base experiment three rows (the first group's median overall DSC, the second's, and the
    gap with CI and verdict), one column per evaluated ratio, and the share dependence."""
    overall = gap_verdicts.filter(pl.col("class") == "overall").sort("experiment", "ratio")
    ratios = sorted(overall["ratio"].unique().to_list())
    rows = []
    for (experiment,), part in overall.group_by("experiment", maintain_order=True):
        by_ratio = {row["ratio"]: row for row in part.iter_rows(named=True)}
        first = part.row(0, named=True)
        lines = {
            first["group_a"]: lambda r: f"{r['median_a']:.3f}",
            first["group_b"]: lambda r: f"{r['median_b']:.3f}",
            "gap (points) [95 % CI] verdict": gap_cell,
        }
        for index, (label, cell) in enumerate(lines.items()):
            rows.append(
                {
                    "experiment": "" if index else experiment,
                    "row": label,
                    **{f"{r} %": cell(by_ratio[r]) if r in by_ratio else "" for r in ratios},
                    "share dependence": "",
                }
            )
        rows[-1]["share dependence"] = share_cell(ratio_dependence, experiment)
    return pl.DataFrame(rows)


def interval(row: dict) -> str:
    """A row's 95 % CI in points: `[-3.1, -1.7]`."""
    return f"[{points(row['ci_low'])}, {points(row['ci_high'])}]"


def overall_trend(ratio_dependence: pl.DataFrame, experiment: str) -> dict | None:
    """The experiment's overall row of the ratio-dependence table; None before two ratios."""
    rows = ratio_dependence.filter(
        (pl.col("experiment") == experiment) & (pl.col("class") == "overall")
    )
    return None if rows.is_empty() else rows.row(0, named=True)


def share_cell(ratio_dependence: pl.DataFrame, experiment: str) -> str:
    """`share dependent, +3.5 [+2.1, +4.9]`: the overall gap slope's trend, estimate and CI."""
    row = overall_trend(ratio_dependence, experiment)
    if row is None:
        return "needs two ratios"
    return f"{row['trend']}, {points(row['estimate'])} {interval(row)}"


def study_findings(
    gap_verdicts: pl.DataFrame,
    design: StudyDesign,
    ratio_dependence: pl.DataFrame | None = None,
    convergence: pl.DataFrame | None = None,
) -> list[str]:
    """One bullet per base experiment: the first group's median DSC at the lowest and highest
    share evaluated, where its gap is established (with CIs) and where not, whether the gap moves
    with the share, and the models' convergence records; last, with one draw, the caveat."""
    overall = gap_verdicts.filter(pl.col("class") == "overall")
    bullets = []
    for experiment in (e for e in design.experiments if e.repeat == 1):
        rows = overall.filter(pl.col("experiment") == experiment.name).sort("ratio")
        if rows.is_empty():
            bullets.append(f"{experiment.name}: not evaluated yet.")
            continue
        low, high = rows.row(0, named=True), rows.row(-1, named=True)
        bullet = (
            f"{experiment.name}: {low['group_a']} median DSC {low['median_a']:.3f} at "
            f"{low['ratio']} % {low['group_a']} in training (vs {low['median_b']:.3f} for "
            f"{low['group_b']}) and {high['median_a']:.3f} at {high['ratio']} % "
            f"(vs {high['median_b']:.3f}). {gap_sentence(rows)}"
        )
        if ratio_dependence is not None:
            bullet += " " + share_sentence(ratio_dependence, experiment.name)
        if convergence is not None:
            repeats = [e.name for e in design.experiments if e.base == experiment.name]
            bullet += " " + convergence_sentence(convergence, repeats)
        bullets.append(bullet)
    if design.repeats == 1 and not overall.is_empty():
        bullets.append(
            f"Every verdict above rests on one training draw per experiment and ratio "
            f"({ONE_DRAW}): a gap of a few tenths of a point can move across the line from one "
            'draw to the next; `repeats: 3` or more measures it (docs/study.md, "Verdicts").'
        )
    return bullets


def gap_sentence(rows: pl.DataFrame) -> str:
    """The ratios grouped by their gap's verdict (first minus second group, points, 95 % CI):
    established first, then equivalent, then not established."""
    by_verdict: dict[str, list[str]] = {}
    for row in rows.iter_rows(named=True):
        verdict = row["verdict"].replace(f" ({ONE_DRAW})", "")
        by_verdict.setdefault(verdict, []).append(
            f"{row['ratio']} % ({points(row['estimate'])} {interval(row)})"
        )
    order = sorted(by_verdict, key=lambda v: (not is_established(v), v == NOT_ESTABLISHED))
    parts = [f"{verdict} at {', '.join(by_verdict[verdict])}" for verdict in order]
    if not any(is_established(v) for v in by_verdict):
        parts.insert(0, "established at no ratio")
    repeats = rows["repeats"].max()
    draws = f"{repeats} training draw{'s' if repeats > 1 else ''}"
    return f"Gap {'; '.join(parts)} ({draws})."


def share_sentence(ratio_dependence: pl.DataFrame, experiment: str) -> str:
    """Whether the experiment's overall gap moves with the first group's training share."""
    row = overall_trend(ratio_dependence, experiment)
    if row is None:
        return "Whether the gap moves with the share needs at least two evaluated ratios."
    return (
        f"Share dependence: {row['trend']}, {row['note']}; gap slope {points(row['estimate'])} "
        f"points from 0 to 100 % share (95 % CI {points(row['ci_low'])} to "
        f"{points(row['ci_high'])}, Holm p={row['p_holm']:.2g})."
    )


def convergence_sentence(convergence: pl.DataFrame, experiments: list[str]) -> str:
    """How many models of the experiments (a base experiment's repeats) reached a plateau under
    their schedule (the `converged` check): a passed check says the curve flattened, not that
    training was enough."""
    models = convergence.filter(pl.col("experiment").is_in(experiments))
    if models.is_empty():
        return "No model of this experiment has a convergence record."
    failed = models.filter(~pl.col("passed"))
    if failed.is_empty():
        return f"All {models.height} models' curves reached a plateau under their schedule."
    which = ", ".join(
        f"{e} {r} % fold {f}"
        for e, r, f in failed.select("experiment", "ratio", "fold").iter_rows()
    )
    return (
        f"{failed.height} of {models.height} models' curves had not reached a plateau "
        f"({which}): their gaps may reflect under-training."
    )
