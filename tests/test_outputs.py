"""Markdown shown in the UI keeps stars, underscores and comparisons as written."""

import polars as pl
import pytest
from markdown_it import MarkdownIt

from cmrbias_dagster.lib.outputs import escape_markdown, markdown_table

render = MarkdownIt("commonmark").enable("table").render


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("****", r"\*\*\*\*"),
        ("race_black", r"race\_black"),
        ("p<0.05", r"p\<0.05"),
        ("a|b", r"a\|b"),
        ("~x", r"\~x"),
        ("-1.4 (**)", r"\-1.4 (\*\*)"),
        ("gap -1.4, ED+ES", "gap -1.4, ED+ES"),
        ("# not a heading", r"\# not a heading"),
        (r"C:\work", r"C:\\work"),
        ("0.942 white", "0.942 white"),
    ],
)
def test_escape_markdown_puts_a_backslash_before_each_special_character(
    text: str, escaped: str
) -> None:
    assert escape_markdown(text) == escaped


def test_findings_keep_their_stars_through_a_markdown_renderer() -> None:
    finding = "race_black: 0 % (***, Holm p=0.001), 25 % (**, Holm p=0.0021)"
    html = render(f"- {escape_markdown(finding)}")
    assert "<em>" not in html and "<strong>" not in html
    assert finding in html


def test_markdown_table_escapes_headers_and_cells() -> None:
    table = pl.DataFrame({"experiment": ["race_black"], "test": ["****"], "p_holm": ["p<0.05"]})
    html = render(markdown_table(table))
    assert "<th>p_holm</th>" in html
    assert "<td>race_black</td>" in html and "<td>****</td>" in html
    assert "<td>p&lt;0.05</td>" in html
