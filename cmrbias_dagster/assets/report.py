"""`study_report`: one self-contained HTML page of the whole study, and the same report as
Markdown in its metadata, which the UI shows behind one click ([Show Markdown])."""

import dagster as dg
import polars as pl

from cmrbias_dagster.lib import report
from cmrbias_dagster.lib.analysis import (
    boundary,
    calibration,
    confounders,
    mitigation,
    repeats,
    strategy_effects,
)
from cmrbias_dagster.lib.external import tables as test_cohort_tables
from cmrbias_dagster.lib.outputs import escape_markdown, write_atomically
from cmrbias_dagster.lib.plots import figure_names
from cmrbias_dagster.lib.probes import attribute_probes
from cmrbias_dagster.resources import StudyResource

FIGURE_ASSETS = (
    "dsc_figure",
    "class_dsc_figure",
    "clinical_figure",
    "fairness_figure",
    "cohort_figure",
    "qualitative_figure",
)
VERSIONED = ("subject_manifest", "training_split", "segmentation_metrics")
# Read from their files, not as inputs: a report built before one was materialised omits it.
FILE_ASSETS = (
    "mitigation_comparison",
    "mitigation_effects",
    "mitigation_figure",
    "repeat_summary",
    "repeat_figure",
    "boundary_metric_table",
    "boundary_verdicts",
    "boundary_ratio_dependence",
    "boundary_figure",
    "confounder_adjusted_gaps",
    "calibration_by_group",
    "reliability_figure",
    "attribute_probes",
    "probe_saliency",
)
EXPORTED_TABLES = {
    "mitigation_comparison": mitigation.SCHEMA,
    "mitigation_effects": strategy_effects.SCHEMA,
    "repeat_summary": repeats.SCHEMA,
    "boundary_metric_table": boundary.MEDIAN_SCHEMA,
    "boundary_verdicts": boundary.GAP_SCHEMA,
    "boundary_ratio_dependence": boundary.TREND_SCHEMA,
    "confounder_adjusted_gaps": confounders.SCHEMA,
    "calibration_by_group": calibration.SCHEMA,
    "test_cohort_median_dsc": test_cohort_tables.MEDIAN_SCHEMA,
    "test_cohort_gap_verdicts": test_cohort_tables.GAP_SCHEMA,
    "attribute_probes": attribute_probes.SCHEMA,
}
# Defined only when the design names an external test cohort (definitions.py decides, once).
EXTERNAL_ASSETS = ("test_cohort_median_dsc", "test_cohort_gap_verdicts", "test_cohort_dsc_figure")


def data_versions(instance: dg.DagsterInstance) -> pl.DataFrame:
    """The latest data version of each partition of the assets the report is built from."""
    rows = []
    for name in VERSIONED:
        seen: set[str | None] = set()
        records = instance.fetch_materializations(dg.AssetKey(name), limit=1000).records
        for record in records:  # newest first
            materialization = record.asset_materialization
            if materialization is None or materialization.partition in seen:
                continue
            seen.add(materialization.partition)
            version = materialization.tags.get("dagster/data_version", "")
            rows.append((name, materialization.partition or "-", version[:16]))
    return pl.DataFrame(rows, schema=["asset", "partition", "data_version"], orient="row").sort(
        "asset", "partition"
    )


def drawn_figures(study: StudyResource) -> dict[str, bytes]:
    """The PNG of every figure drawn so far, by its name in `figure_names`."""
    names = figure_names.all_figures(study.design().experiment_names)
    paths = {name: study.figure_file(name) for name in names}
    return {name: path.read_bytes() for name, path in paths.items() if path.is_file()}


def exported_table(study: StudyResource, name: str, schema: dict) -> pl.DataFrame:
    """An analysis table from its CSV under tables/; empty while it has not been exported."""
    path = study.tables_folder() / f"{name}.csv"
    return pl.read_csv(path, schema=schema) if path.is_file() else pl.DataFrame(schema=schema)


def exported_tables(study: StudyResource) -> dict[str, pl.DataFrame]:
    """The tables the report reads from their exported CSV files (`EXPORTED_TABLES`)."""
    return {name: exported_table(study, name, schema) for name, schema in EXPORTED_TABLES.items()}


def study_report_asset(external_cohorts: bool) -> dg.AssetsDefinition:
    """`study_report`, waiting also for the external cohorts' tables and figure when the design
    names one (definitions.py passes what its design says)."""
    external = EXTERNAL_ASSETS if external_cohorts else ()

    @dg.asset(group_name="report", kinds={"html"}, deps=[*FIGURE_ASSETS, *FILE_ASSETS, *external])
    def study_report(
        context: dg.AssetExecutionContext,
        study: StudyResource,
        cohort_characteristics: pl.DataFrame,
        median_dsc_table: pl.DataFrame,
        intersectional_dsc_table: pl.DataFrame,
        group_comparisons: pl.DataFrame,
        ratio_comparisons: pl.DataFrame,
        clinical_difference_table: pl.DataFrame,
        fairness_table: pl.DataFrame,
        ratio_dependence_table: pl.DataFrame,
        gap_verdicts: pl.DataFrame,
        model_convergence: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The study on one HTML page: the headline table and the findings (each gap with its
        two-level CI and verdict, its dependence on the share, the models' convergence records),
        design, profile and seed, Tables 1-3, statistics, fairness, every figure, software versions
        and the data versions it was built from. To read it here, click [Show Markdown] next to
        `report_markdown` below."""
        tables = report.ReportTables(
            cohort_characteristics=cohort_characteristics,
            median_dsc=median_dsc_table,
            intersectional_dsc=intersectional_dsc_table,
            group_comparisons=group_comparisons,
            ratio_comparisons=ratio_comparisons,
            clinical_difference=clinical_difference_table,
            fairness=fairness_table,
            ratio_dependence=ratio_dependence_table,
            gap_verdicts=gap_verdicts,
            model_convergence=model_convergence,
            **exported_tables(study),
            data_versions=data_versions(context.instance),
        )
        design = study.design()
        findings = report.report_findings(tables, design)
        inputs = report.ReportInputs(
            tables, drawn_figures(study), design, study.profile, study.settings(), findings
        )
        page, markdown = report.study_report_pages(inputs)
        path = write_atomically(study.report_file(), page.encode())
        return dg.MaterializeResult(
            metadata={
                "report_markdown": dg.MetadataValue.md(markdown),
                "findings": dg.MetadataValue.md(
                    "\n".join(f"- {escape_markdown(f)}" for f in findings)
                ),
                "path": dg.MetadataValue.path(str(path)),
                "size_kb": round(len(page) / 1024, 1),
                "markdown_kb": round(len(markdown) / 1024, 1),
            }
        )

    return study_report
