"""Stage 7, the report: its outline (`outline`: the sections in order, from the tables and the
figures), one self-contained HTML page (tables inline, figures embedded), the same report as
Markdown for the Dagster UI, the bias mitigation, repeated draws and calibration sections, and
the software versions it records. May import `analysis`, `design`, `plots` (the figures' names)
and `outputs`.
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
from cmrbias_dagster.lib.report.mitigation import mitigation_section
from cmrbias_dagster.lib.report.outline import (
    OUTLINE,
    ReportInputs,
    ReportTables,
    report_findings,
    study_report_pages,
    study_report_sections,
)
from cmrbias_dagster.lib.report.repeats import repeats_section

__all__ = [
    "OUTLINE",
    "ReportInputs",
    "ReportTables",
    "Section",
    "downscaled_png",
    "html_figure",
    "html_table",
    "markdown_figure",
    "mitigation_section",
    "repeats_section",
    "report_findings",
    "software_versions",
    "study_report_html",
    "study_report_markdown",
    "study_report_pages",
    "study_report_sections",
]
