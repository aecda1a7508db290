"""The study report as one Markdown text the Dagster UI renders in asset metadata: text escaped,
tables as Markdown tables, figures as small inline PNGs within a size budget."""

import base64
import io
from collections.abc import Iterable

from PIL import Image

from cmrbias_dagster.lib.outputs import escape_markdown, markdown_table
from cmrbias_dagster.lib.report.html import Section

FIGURE_WIDTH = 640
# The UI loads the whole value with the asset page; a few MB would stall it.
MARKDOWN_BUDGET = 1_500_000


def downscaled_png(png: bytes, max_width: int = FIGURE_WIDTH) -> bytes:
    """The PNG at most `max_width` pixels wide, in a 256-colour palette: plots stay legible at a
    fraction of the bytes."""
    with Image.open(io.BytesIO(png)) as picture:
        picture = picture.convert("RGB")
        if picture.width > max_width:
            height = round(picture.height * max_width / picture.width)
            picture = picture.resize((max_width, height), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        picture.quantize(256).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def markdown_figure(caption: str, png: bytes) -> str:
    """A PNG inline as a data URI, captioned below."""
    data = base64.b64encode(png).decode()
    caption = escape_markdown(caption)
    return f"![{caption}](data:image/png;base64,{data})\n\n*{caption}*"


def section_markdown(section: Section) -> str:
    """The section's heading, paragraphs (one a line of its text), bullets and tables; not its
    figures."""
    parts = [f"## {escape_markdown(section.heading)}"]
    parts += [escape_markdown(line) for line in section.text.splitlines() if line.strip()]
    if section.bullets:
        parts.append("\n".join(f"- {escape_markdown(bullet)}" for bullet in section.bullets))
    for caption, table in section.tables:
        if caption:
            parts.append(f"### {escape_markdown(caption)}")
        parts.append(markdown_table(table))
    return "\n\n".join(parts)


def study_report_markdown(
    title: str,
    summary: str,
    sections: Iterable[Section],
    figure_width: int = FIGURE_WIDTH,
    budget: int = MARKDOWN_BUDGET,
) -> str:
    """The whole report in Markdown, figures downscaled to `figure_width`. Text and tables come
    first in the budget; a figure that would take the whole past `budget` characters is named
    instead, pointing to the HTML file."""
    sections = list(sections)
    texts = [section_markdown(section) for section in sections]
    head = f"# {escape_markdown(title)}\n\n{escape_markdown(summary)}"
    used = len(head) + sum(len(text) + 2 for text in texts)
    blocks = [head]
    for section, text in zip(sections, texts, strict=True):
        blocks.append(text)
        for caption, png in section.figures:
            figure = markdown_figure(caption, downscaled_png(png, figure_width))
            if used + len(figure) + 2 > budget:
                figure = f"*{escape_markdown(caption)}: too large to show here, see the HTML file*"
            used += len(figure) + 2
            blocks.append(figure)
    return "\n\n".join(blocks) + "\n"
