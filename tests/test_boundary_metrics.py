"""HD95 and ASSD by group (lib/analysis/boundary.py): per-subject means with undefined distances
left out and counted, Table 2 in mm, the group tests, two-level verdicts without equivalence,
the share trend read the right way round for a distance, the figure and the report section
(no training)."""

import dataclasses
import math

import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.lib import report
from cmrbias_dagster.lib.analysis import boundary
from cmrbias_dagster.lib.analysis.two_level import ESTABLISHED, NOT_ESTABLISHED, ONE_DRAW
from cmrbias_dagster.lib.design.study import parse_study_design
from cmrbias_dagster.lib.plots import boundary_by_ratio_figure, figure_png
from cmrbias_dagster.lib.report import inputs as report_inputs
from cmrbias_dagster.lib.report import outline
from tests.test_repeats import RACE_BLACK, design_mapping

DESIGN = parse_study_design(design_mapping(race_black=RACE_BLACK))
RATIOS = (0, 50, 100)
PER_GROUP = 16
# Subject 0 of the first group misses its ES RVBP at every ratio: no distance there.
MISSING = ("black_0", "ES", "RVBP")


def planted_metrics(seed: int = 0) -> pl.DataFrame:
    """Case rows of both experiments: in race_black the first group's boundaries lie 2 mm
    farther out at 0 % (HD95; ASSD a third of it), closing linearly to 0 at 100 %; sex none."""
    rng = np.random.default_rng(seed)
    rows = []
    for experiment in DESIGN.experiments:
        first, second = experiment.groups
        for ratio in RATIOS:
            for group in (first, second):
                for s in range(PER_GROUP):
                    subject = f"{group}_{s}"
                    held = experiment.held_values[s % 2]
                    worse = experiment.name == "race_black" and group == first
                    shift = 2.0 * (1 - ratio / 100) if worse else 0.0
                    for phase in ("ED", "ES"):
                        for name in ("LVBP", "LVM", "RVBP"):
                            hd95 = 5.0 + shift + rng.normal(0, 0.2)
                            if (
                                experiment.name == "race_black"
                                and (subject, phase, name) == MISSING
                            ):
                                hd95 = math.nan
                            row = (experiment.name, ratio, subject, group, held, phase, name)
                            rows.append((*row, 0.9, hd95, hd95 / 3))
    columns = ["experiment", "ratio", "subject_id", "group", "held", "phase", "class"]
    return pl.DataFrame(rows, schema=[*columns, "dice", "hd95_mm", "assd_mm"], orient="row")


@pytest.fixture(scope="module")
def metrics() -> pl.DataFrame:
    return planted_metrics()


@pytest.fixture(scope="module")
def scores(metrics: pl.DataFrame) -> pl.DataFrame:
    return boundary.subject_boundary_scores(metrics)


def subject_row(scores: pl.DataFrame, subject: str, name: str) -> dict:
    return scores.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("ratio") == 0)
        & (pl.col("subject_id") == subject)
        & (pl.col("class") == name)
    ).row(0, named=True)


def test_a_subject_score_is_the_mean_of_its_cases_or_undefined(metrics, scores) -> None:
    cases = metrics.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("ratio") == 0)
        & (pl.col("subject_id") == "black_1")
    )
    row = subject_row(scores, "black_1", "overall")
    assert row["hd95_mm"] == pytest.approx(cases["hd95_mm"].mean()) and row["cases"] == 6
    assert row["assd_mm"] == pytest.approx(cases["assd_mm"].mean())
    lvbp = subject_row(scores, "black_0", "LVBP")
    assert lvbp["hd95_mm"] is not None and lvbp["undefined_cases"] == 0
    for name in ("RVBP", "overall"):  # the missed structure leaves both undefined, counted
        missed = subject_row(scores, "black_0", name)
        assert missed["hd95_mm"] is None and missed["assd_mm"] is None, name
        assert missed["undefined_cases"] == 1, name


def test_table2_in_mm_counts_the_undefined_subjects(scores) -> None:
    table = boundary.boundary_median_table(scores, seed=1)
    assert table.schema == pl.Schema(boundary.MEDIAN_SCHEMA)
    cell = table.filter(
        (pl.col("metric") == "hd95_mm")
        & (pl.col("experiment") == "race_black")
        & (pl.col("ratio") == 0)
        & (pl.col("class") == "overall")
    )
    black = cell.filter(pl.col("group") == "black").row(0, named=True)
    defined = scores.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("ratio") == 0)
        & (pl.col("class") == "overall")
        & (pl.col("group") == "black")
    )["hd95_mm"].drop_nulls()
    assert (black["n"], black["n_undefined"]) == (PER_GROUP - 1, 1)
    assert black["median_mm"] == pytest.approx(float(np.median(defined.to_numpy())))
    assert black["ci_low"] <= black["median_mm"] <= black["ci_high"]
    everyone = cell.filter(pl.col("group") == "all").row(0, named=True)
    assert (everyone["n"], everyone["n_undefined"]) == (2 * PER_GROUP - 1, 1)
    white = cell.filter(pl.col("group") == "white").row(0, named=True)
    assert black["median_mm"] > white["median_mm"] + 1.5  # the planted 2 mm


def test_group_tests_per_metric_say_the_first_group_is_worse(scores) -> None:
    table = boundary.boundary_comparisons(scores, DESIGN.group_order())
    at_zero = table.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("ratio") == 0)
        & (pl.col("class") == "overall")
    )
    assert at_zero["metric"].to_list() == list(boundary.METRICS)
    for row in at_zero.iter_rows(named=True):
        assert row["effect_size"] == pytest.approx(1.0) and row["stars"] != "ns"
        assert (row["n_a"], row["n_b"]) == (PER_GROUP - 1, PER_GROUP)


def test_verdicts_in_mm_have_no_equivalence(scores) -> None:
    table = boundary.boundary_gap_table(scores, DESIGN)
    overall = table.filter(pl.col("class") == "overall")
    race = overall.filter((pl.col("experiment") == "race_black") & (pl.col("ratio") == 0))
    for row in race.iter_rows(named=True):
        assert row["estimate"] > 0 and row["verdict"] == f"{ESTABLISHED} ({ONE_DRAW})"
    sex = overall.filter(pl.col("experiment") == "sex")
    assert set(sex["verdict"]) == {f"{NOT_ESTABLISHED} ({ONE_DRAW})"}  # never "equivalent"


def test_a_closing_distance_gap_reads_as_share_dependent(scores) -> None:
    table = boundary.boundary_ratio_dependence(scores, DESIGN)
    row = table.filter(
        (pl.col("experiment") == "race_black")
        & (pl.col("metric") == "hd95_mm")
        & (pl.col("class") == "overall")
    ).row(0, named=True)
    assert row["estimate"] == pytest.approx(-2.0, abs=0.3) and row["trend"] == "share dependent"


def test_the_figure_the_findings_and_the_report_section(scores) -> None:
    tests = boundary.boundary_comparisons(scores, DESIGN.group_order())
    figure = boundary_by_ratio_figure(scores, tests, DESIGN.group_order(), boundary.METRICS)
    assert len(figure.axes) == 2 * 2 and len(figure_png(figure)) > 10_000
    verdicts = boundary.boundary_gap_table(scores, DESIGN)
    trends = boundary.boundary_ratio_dependence(scores, DESIGN)
    bullets = boundary.boundary_findings(verdicts, trends)
    race = next(b for b in bullets if b.startswith("race_black boundaries"))
    assert "lower is better" in race and "share trend: share dependent" in race
    empty = {f.name: pl.DataFrame() for f in dataclasses.fields(report.ReportTables)}
    tables = report.ReportTables(
        **{
            **empty,
            "boundary_metric_table": boundary.boundary_median_table(scores, seed=1),
            "boundary_verdicts": verdicts,
            "boundary_ratio_dependence": trends,
        }
    )
    inputs = report.ReportInputs(tables, {}, DESIGN, "quick", None, ())
    section = outline.boundary_metrics_section(inputs)
    assert section is not None and section.heading == "Boundary metrics (HD95, ASSD)"
    captions = [caption for caption, _ in section.tables]
    assert "race_black, median HD95 (mm)" in captions and "sex, median ASSD (mm)" in captions
    assert report_inputs.extra_findings(tables) == bullets
    no_boundary = report.ReportInputs(report.ReportTables(**empty), {}, DESIGN, "quick", None, ())
    assert outline.boundary_metrics_section(no_boundary) is None
