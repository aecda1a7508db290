"""The study report: one self-contained HTML page (tables inline, figures embedded as PNG)."""

import base64
import html
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

import polars as pl

SOFTWARE = ("dagster", "nnunetv2", "torch", "numpy", "scipy", "polars", "duckdb", "matplotlib")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } figcaption { font-size: 0.9rem; color: #555; margin-bottom: 1.5rem; }
"""


@dataclass(frozen=True)
class Section:
    """A heading, an optional paragraph, bullets, tables (caption, frame) and figures (caption,
    PNG)."""

    heading: str
    text: str = ""
    bullets: Sequence[str] = field(default_factory=tuple)
    tables: Sequence[tuple[str, pl.DataFrame]] = field(default_factory=tuple)
    figures: Sequence[tuple[str, bytes]] = field(default_factory=tuple)


def software_versions() -> pl.DataFrame:
    """Python and the installed versions of the packages the study depends on."""
    rows = [("python", platform.python_version())]
    for name in SOFTWARE:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    return pl.DataFrame(rows, schema=["package", "version"], orient="row")


def html_table(table: pl.DataFrame, digits: int = 3) -> str:
    """A frame as an HTML table, floats with `digits` significant digits, text escaped."""

    def cell(value: object) -> str:
        text = "" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else value
        return html.escape(str(text))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in table.rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_figure(caption: str, png: bytes) -> str:
    """A PNG embedded as a data URI, with its caption."""
    data = base64.b64encode(png).decode()
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render_section(section: Section) -> str:
    parts = [f"<h2>{html.escape(section.heading)}</h2>"]
    if section.text:
        parts.append(f"<p>{html.escape(section.text)}</p>")
    if section.bullets:
        items = "".join(f"<li>{html.escape(bullet)}</li>" for bullet in section.bullets)
        parts.append(f"<ul>{items}</ul>")
    for caption, table in section.tables:
        parts.append(f"<h3>{html.escape(caption)}</h3>{html_table(table)}")
    parts += [html_figure(caption, png) for caption, png in section.figures]
    return "\n".join(parts)


def study_report_html(title: str, summary: str, sections: Iterable[Section]) -> str:
    """The whole page: title, summary paragraph and the sections in order."""
    body = "\n".join(render_section(s) for s in sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>\n{body}\n</body></html>\n"
    )
