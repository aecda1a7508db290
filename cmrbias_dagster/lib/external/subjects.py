"""An external cohort's subjects as an experiment's test subjects: their group and held value,
read from the cohort's own attributes, and their metrics against their own truth."""

import polars as pl

from cmrbias_dagster.lib.design.experiment import Experiment

# The metrics that need the class in the truth: undefined (null) where the truth lacks it.
TRUTH_METRICS = ("dice", "hd95_mm", "assd_mm")


def external_test_subjects(manifest: pl.DataFrame, experiment: Experiment) -> pl.DataFrame:
    """subject_id, test_cohort, group and held of every external subject: the group is the
    subject's value of the experiment's attribute when it is one of the two groups, else null
    (a cohort that does not record it, or another value); likewise the held value."""
    return manifest.select(
        "subject_id",
        "test_cohort",
        group=_one_of(manifest, experiment.attribute, experiment.groups),
        held=_one_of(manifest, experiment.held_attribute, experiment.held_values),
    )


def _one_of(manifest: pl.DataFrame, column: str | None, values: tuple[str, ...] | None) -> pl.Expr:
    if column is None or values is None or column not in manifest.columns:
        return pl.lit(None, dtype=pl.String)
    value = pl.col(column).cast(pl.String)
    return pl.when(value.is_in(list(values))).then(value).otherwise(None)


def undefined_where_unlabelled(metrics: pl.DataFrame) -> pl.DataFrame:
    """Metrics rows with DSC, HD95 and ASSD null where the subject's truth has no voxel of the
    class (Sunnybrook labels no RV): the DSC rule for two empty masks (1.0) or an empty truth
    (0.0) would score a label the cohort never drew."""
    unlabelled = pl.col("true_ml") <= 0
    return metrics.with_columns(
        pl.when(unlabelled).then(None).otherwise(pl.col(name)).alias(name) for name in TRUTH_METRICS
    )
