"""The report page and the findings sentences, from constructed tables."""

import polars as pl

from cmrbias_dagster.lib import report
from cmrbias_dagster.lib.analysis.findings import group_gaps, study_findings
from cmrbias_dagster.lib.design.study import load_study_design
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE


def medians() -> pl.DataFrame:
    rows = [
        ("race_black", 0, "overall", "black", 0.90),
        ("race_black", 0, "overall", "white", 0.95),
        ("race_black", 100, "overall", "black", 0.94),
        ("race_black", 100, "overall", "white", 0.93),
        ("race_black", 0, "LVM", "black", 0.10),  # another class: ignored
    ]
    return pl.DataFrame(
        rows, schema=["experiment", "ratio", "class", "group", "median_dsc"], orient="row"
    )


def comparisons_table() -> pl.DataFrame:
    rows = [
        ("race_black", 0, "overall", "black", "white", 0.001, 0.002, "***"),
        ("race_black", 100, "overall", "black", "white", 0.40, 0.40, "ns"),
    ]
    columns = ["experiment", "ratio", "class", "group_a", "group_b", "p_value", "p_holm", "stars"]
    return pl.DataFrame(rows, schema=columns, orient="row")


def test_group_gaps_pair_the_groups_with_their_test() -> None:
    gaps = group_gaps(medians(), comparisons_table())
    assert gaps["gap"].round(6).to_list() == [-0.05, 0.01]
    assert gaps.row(0, named=True)["stars"] == "***"


def test_findings_name_the_significant_ratios_and_unevaluated_experiments() -> None:
    design = load_study_design(DEFAULT_STUDY_FILE)
    sentences = study_findings(medians(), comparisons_table(), design)
    race = next(s for s in sentences if s.startswith("race_black"))
    assert "0.900 at 0 % black" in race and "0.940 at 100 %" in race
    assert "significantly at 0 % (***, Holm p=0.002)" in race
    assert "sex: not evaluated yet." in sentences


def test_report_page_escapes_text_and_embeds_figures() -> None:
    section = report.Section(
        "Results <1>",
        "a & b",
        tables=[("t", pl.DataFrame({"group": ["<b>"], "p": [0.012345]}))],
        figures=[("fig", b"\x89PNG fake")],
    )
    page = report.study_report_html("Title", "summary", [section])
    assert "<h2>Results &lt;1&gt;</h2>" in page and "<p>a &amp; b</p>" in page
    assert "<td>&lt;b&gt;</td><td>0.0123</td>" in page
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in page
    versions = dict(report.software_versions().iter_rows())
    assert versions["python"].count(".") == 2 and versions["polars"] == pl.__version__


def dependence(verdict: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "experiment": ["race_black"],
            "class": ["overall"],
            "gap_slope": [0.04],
            "ci_low": [0.02],
            "ci_high": [0.06],
            "p_holm": [0.001],
            "verdict": [verdict],
        }
    )


def convergence(passed: list[bool]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "experiment": ["race_black"] * len(passed),
            "ratio": [0, 100][: len(passed)],
            "fold": [0] * len(passed),
            "passed": passed,
        }
    )


def test_findings_say_whether_the_gap_moves_with_the_share() -> None:
    design = load_study_design(DEFAULT_STUDY_FILE)
    moving = study_findings(medians(), comparisons_table(), design, dependence("share_dependent"))
    race = next(s for s in moving if s.startswith("race_black"))
    assert "moves with the training share: imbalance bias" in race
    assert "+4.0 DSC points from 0 to 100 % share (95 % CI +2.0 to +6.0" in race
    flat = study_findings(medians(), comparisons_table(), design, dependence("constant"))
    assert "is not imbalance bias" in next(s for s in flat if s.startswith("race_black"))


def test_findings_flag_gaps_of_models_that_did_not_converge() -> None:
    design = load_study_design(DEFAULT_STUDY_FILE)
    ready = study_findings(
        medians(), comparisons_table(), design, convergence=convergence([True, True])
    )
    assert "All 2 models passed the convergence check." in ready[1]
    unready = study_findings(
        medians(), comparisons_table(), design, convergence=convergence([True, False])
    )
    race = next(s for s in unready if s.startswith("race_black"))
    assert "1 of 2 models did not pass the convergence check (100 % fold 0)" in race
    assert "may reflect under-training" in race
