"""The report page, its Markdown for the UI and the findings sentences, from constructed tables."""

import base64
import io
import re

import numpy as np
import polars as pl
from markdown_it import MarkdownIt
from PIL import Image

from cmrbias_dagster.lib import report

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


def comparisons_table() -> pl.DataFrame:
    rows = [
        ("race_black", 0, "overall", "black", "white", 0.001, 0.002, "***"),
        ("race_black", 100, "overall", "black", "white", 0.40, 0.40, "ns"),
    ]
    columns = ["experiment", "ratio", "class", "group_a", "group_b", "p_value", "p_holm", "stars"]
    return pl.DataFrame(rows, schema=columns, orient="row")


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
