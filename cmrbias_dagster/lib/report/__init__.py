"""Stage 7, the report: one self-contained HTML page (tables inline, figures embedded) and the
software versions it records. May import `analysis` and `outputs`.
"""

from cmrbias_dagster.lib.report.html import (
    Section,
    html_figure,
    html_table,
    software_versions,
    study_report_html,
)

__all__ = ["Section", "html_figure", "html_table", "software_versions", "study_report_html"]
