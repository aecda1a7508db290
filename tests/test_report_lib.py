"""The report page, its Markdown for the UI and the findings sentences, from constructed tables."""

import base64
import io
import re

import numpy as np
import polars as pl
from markdown_it import MarkdownIt
from PIL import Image

from cmrbias_dagster.lib import report
from cmrbias_dagster.lib.analysis.findings import group_gaps, study_findings
from cmrbias_dagster.lib.design.study import load_study_design
from cmrbias_dagster.resources import DEFAULT_STUDY_FILE

render = MarkdownIt("commonmark").enable("table").render


def noise_png(width: int, height: int, seed: int = 0) -> bytes:
    """A PNG that compresses badly: random colours."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def inline_pngs(markdown: str) -> list[Image.Image]:
    found = re.findall(r"\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in found]


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
    assert "All 2 models passed the convergence check: their curves reached a plateau" in ready[1]
    unready = study_findings(
        medians(), comparisons_table(), design, convergence=convergence([True, False])
    )
    race = next(s for s in unready if s.startswith("race_black"))
    assert "1 of 2 models did not pass the convergence check (100 % fold 0)" in race
    assert "may reflect under-training" in race


def test_report_markdown_keeps_stars_and_names_and_inlines_small_figures() -> None:
    section = report.Section(
        "Statistics (Table 2)",
        "race_black: gap -0.05 (***, p<0.05)\n# not a heading",
        tables=[("Groups, overall", comparisons_table())],
        figures=[("fig2_dsc_by_ratio", noise_png(1200, 600))],
    )
    markdown = report.study_report_markdown("Title", "Profile tiny.", [section], figure_width=300)
    page = render(markdown)
    assert "<h1>Title</h1>" in page and "<h2>Statistics (Table 2)</h2>" in page
    assert "<p>race_black: gap -0.05 (***, p&lt;0.05)</p>" in page
    assert "<p># not a heading</p>" in page
    assert "<th>group_a</th>" in page and "<td>***</td>" in page and "<td>0.002</td>" in page
    assert "<em>fig2_dsc_by_ratio</em>" in page
    (picture,) = inline_pngs(markdown)
    assert picture.size == (300, 150)


def test_downscaling_keeps_small_figures_and_the_aspect_ratio() -> None:
    small = Image.open(io.BytesIO(report.downscaled_png(noise_png(200, 100), max_width=640)))
    assert small.size == (200, 100)
    wide = Image.open(io.BytesIO(report.downscaled_png(noise_png(1000, 300), max_width=500)))
    assert wide.size == (500, 150)


def test_report_markdown_names_the_figures_past_its_budget() -> None:
    figures = [(f"fig{i}", noise_png(400, 400, seed=i)) for i in range(3)]
    section = report.Section("Figures", figures=figures)
    one_figure = len(report.markdown_figure("fig0", report.downscaled_png(figures[0][1])))
    markdown = report.study_report_markdown("T", "s", [section], budget=int(one_figure * 1.5))
    assert len(markdown) <= one_figure * 1.5
    assert len(inline_pngs(markdown)) == 1 and "](data:image/png;base64," in markdown
    for name in ("fig1", "fig2"):
        assert f"*{name}: too large to show here, see the HTML file*" in markdown
