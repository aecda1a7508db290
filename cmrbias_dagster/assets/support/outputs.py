"""How an analysis table and a figure leave an asset: a table as its DuckDB output with CSV and
LaTeX copies, figures as PNG files shown in the metadata; shared by the analysis, figure, probe
and external-cohort assets."""

import dagster as dg
import polars as pl
from matplotlib.figure import Figure

from cmrbias_dagster.lib import plots
from cmrbias_dagster.lib.outputs import export_table, write_atomically
from cmrbias_dagster.lib.plots.subjects import markdown_image
from cmrbias_dagster.resources import StudyResource

# The @dg.asset arguments every analysis table shares, and every figure.
ANALYSIS_ASSET_ARGS = {"group_name": "analysis", "kinds": {"polars", "duckdb"}}
FIGURE_ASSET_ARGS = {"group_name": "figures", "kinds": {"matplotlib"}}


def table_output(study: StudyResource, table: pl.DataFrame, name: str, **metadata) -> dg.Output:
    """The table as the asset's DuckDB output, also written as CSV and LaTeX under tables/."""
    paths = export_table(table, study.tables_folder(), name)
    return dg.Output(
        table,
        metadata={
            "rows": table.height,
            "csv": dg.MetadataValue.path(str(paths["csv"])),
            "latex": dg.MetadataValue.path(str(paths["latex"])),
            **{key: dg.MetadataValue.md(value) for key, value in metadata.items()},
        },
    )


def write_figures(study: StudyResource, figures: dict[str, Figure]) -> dg.MaterializeResult:
    """Each figure written as PNG, shown inline in the metadata and linked by path."""
    metadata: dict[str, dg.MetadataValue] = {}
    for name, figure in figures.items():
        png = plots.figure_png(figure)
        path = write_atomically(study.figure_file(name), png)
        metadata[name] = dg.MetadataValue.md(markdown_image(png, name))
        metadata[f"{name}_path"] = dg.MetadataValue.path(str(path))
    return dg.MaterializeResult(metadata=metadata)
