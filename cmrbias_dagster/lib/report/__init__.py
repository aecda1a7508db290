"""Stage 7, the report: one self-contained HTML page (tables inline, figures embedded), the same
report as Markdown for the Dagster UI, and the software versions it records. May import
`analysis` and `outputs`.
"""

from cmrbias_dagster.lib.report.html import (
    Section,
    html_figure,
    html_table,
    software_versions,
    study_report_html,
)
from cmrbias_dagster.lib.report.markdown import (
    downscaled_png,
    markdown_figure,
    study_report_markdown,
)

__all__ = [
    "Section",
    "downscaled_png",
    "html_figure",
    "html_table",
    "markdown_figure",
    "software_versions",
    "study_report_html",
    "study_report_markdown",
]
