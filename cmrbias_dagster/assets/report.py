"""`study_report`: one self-contained HTML page of the whole study, and the same report as
Markdown in its metadata, which the UI shows behind one click ([Show Markdown])."""

import dagster as dg
import polars as pl

from cmrbias_dagster.lib import report
from cmrbias_dagster.lib.analysis import mitigation, repeats, result_tables
from cmrbias_dagster.lib.analysis.findings import study_findings
from cmrbias_dagster.lib.outputs import escape_markdown, write_atomically
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
FILE_ASSETS = ("mitigation_comparison", "mitigation_figure", "repeat_summary", "repeat_figure")


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


def design_table(study: StudyResource) -> pl.DataFrame:
    settings = study.settings()
    rows = [
        (
            e.name,
            f"{e.groups[0]} vs {e.groups[1]}",
            f"{e.held_attribute} {e.held_values}" if e.held_attribute else "none",
        )
        for e in study.design().experiments
    ]
    table = pl.DataFrame(rows, schema=["experiment", "groups", "held 50/50"], orient="row")
    return table.with_columns(
        ratios=pl.lit(str(list(study.design().ratios))),
        train=pl.lit(settings.train_size),
        test=pl.lit(settings.test_size),
        folds=pl.lit(settings.folds),
        trained_folds=pl.lit(settings.trained_folds),
    )


def draws_note(study: StudyResource) -> str:
    """How often each experiment is drawn, when more than once (`repeats` in the design)."""
    repeats = study.design().repeats
    note = f" Each experiment drawn {repeats} times (repeat r > 1: <experiment>_r<r>)."
    return note if repeats > 1 else ""


def table3_note(study: StudyResource) -> str:
    """Which experiments Table 3 leaves out because they hold no attribute 50/50."""
    unheld = [e.name for e in study.design().experiments if not e.held_attribute]
    return f"No held attribute, so no rows: {', '.join(unheld)}." if unheld else ""


def mitigation_section(study: StudyResource) -> list[report.Section]:
    """The "Bias mitigation" section from the exported `mitigation_comparison` and its figure;
    none while that table has no rows of the design's mitigated experiments."""
    figure = study.figure_file("mitigation")
    table = exported_table(study, "mitigation_comparison", mitigation.SCHEMA)
    png = figure.read_bytes() if figure.is_file() else None
    section = report.mitigation_section(table, study.design(), png)
    return [] if section is None else [section]


def repeats_section(study: StudyResource) -> list[report.Section]:
    """The "Repeated draws" section from the exported `repeat_summary` and its figure; none
    before that table has rows."""
    figure = study.figure_file("repeats")
    table = exported_table(study, "repeat_summary", repeats.SCHEMA)
    png = figure.read_bytes() if figure.is_file() else None
    section = report.repeats_section(table, study.design(), png)
    return [] if section is None else [section]


def exported_table(study: StudyResource, name: str, schema: dict) -> pl.DataFrame:
    """An analysis table from its CSV under tables/; empty while it has not been exported."""
    path = study.tables_folder() / f"{name}.csv"
    return pl.read_csv(path, schema=schema) if path.is_file() else pl.DataFrame(schema=schema)


@dg.asset(group_name="report", kinds={"html"}, deps=[*FIGURE_ASSETS, *FILE_ASSETS])
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
    model_convergence: pl.DataFrame,
) -> dg.MaterializeResult:
    """The study on one HTML page: the findings (with each gap's dependence on the share, the
    models' convergence and whether it holds across repeated draws), design, profile and seed,
    Tables 1-3, statistics, fairness, every figure, software versions and the data versions it
    was built from. To read it here, click [Show Markdown] next to `report_markdown` below."""

    def figures(*names: str) -> list[tuple[str, bytes]]:
        paths = [(n, study.figure_file(n)) for n in names]
        return [(n, p.read_bytes()) for n, p in paths if p.is_file()]

    experiments = study.design().experiment_names
    findings = study_findings(
        median_dsc_table,
        group_comparisons,
        study.design(),
        ratio_dependence=ratio_dependence_table,
        convergence=model_convergence,
        repeat_summary=exported_table(study, "repeat_summary", repeats.SCHEMA),
    )
    sections = [
        report.Section("Findings", "\n".join(findings)),
        report.Section(
            "Study design",
            f"Profile {study.profile}, seed {study.design().seed}.{draws_note(study)}",
            tables=[("Experiments", design_table(study))],
        ),
        report.Section(
            "Cohort (Table 1)",
            tables=[("Characteristics, Welch t-tests", cohort_characteristics)],
            figures=figures("cohort_distributions"),
        ),
        report.Section(
            "Median DSC (Table 2)",
            tables=[
                (e, result_tables.table2_wide(median_dsc_table, e))
                for e in experiments
                if e in set(median_dsc_table["experiment"])
            ],
            figures=figures("fig2_dsc_by_ratio", "fig3_dsc_by_class"),
        ),
        report.Section(
            "Intersectional medians (Table 3)",
            table3_note(study),
            tables=[("", intersectional_dsc_table)],
        ),
        report.Section(
            "Statistics",
            "Mann-Whitney U between groups; paired Wilcoxon between ratios; Holm per experiment.",
            tables=[
                ("Groups, overall DSC", group_comparisons.filter(pl.col("class") == "overall")),
                ("Ratios vs 0 %", ratio_comparisons.filter(pl.col("ratio_a") == 0)),
            ],
        ),
        report.Section(
            "Does the gap move with the training share?",
            "Per-subject DSC slopes over the ratios; the gap slope is the first group's mean slope "
            "minus the second's (DSC per 100 % share), tested by permuting group labels within "
            "held strata (Holm per class). A gap that does not move with the share is group "
            "difficulty or under-training, not imbalance bias.",
            tables=[("", ratio_dependence_table.drop("note"))],
        ),
        report.Section(
            "Model convergence",
            "Each trained fold's `converged` check: the EMA pseudo-Dice and the training loss "
            "over the last part of training (thresholds per profile in the study design).",
            tables=[("", model_convergence.drop("reason", strict=False))],
        ),
        report.Section(
            "Clinical measures (predicted minus truth)",
            tables=[("", clinical_difference_table)],
            figures=figures("fig4_clinical_differences"),
        ),
        report.Section("Fairness", tables=[("", fairness_table)], figures=figures("fairness")),
        *mitigation_section(study),
        *repeats_section(study),
        report.Section("Qualitative", figures=figures(*(f"qualitative_{e}" for e in experiments))),
        report.Section(
            "Provenance",
            tables=[
                ("Software", report.software_versions()),
                ("Data versions", data_versions(context.instance)),
            ],
        ),
    ]
    title = "Demographic bias in nnU-Net CMR segmentation"
    page = report.study_report_html(title, f"Profile {study.profile}.", sections)
    markdown = report.study_report_markdown(
        title, f"Profile {study.profile}. The full-size figures are in the HTML file.", sections
    )
    path = write_atomically(study.report_file(), page.encode())
    return dg.MaterializeResult(
        metadata={
            "report_markdown": dg.MetadataValue.md(markdown),
            "findings": dg.MetadataValue.md("\n".join(f"- {escape_markdown(f)}" for f in findings)),
            "path": dg.MetadataValue.path(str(path)),
            "size_kb": round(len(page) / 1024, 1),
            "markdown_kb": round(len(markdown) / 1024, 1),
        }
    )
