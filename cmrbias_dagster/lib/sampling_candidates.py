"""Who a draw can take: the subjects in an experiment's strata, and why others cannot be drawn."""

import polars as pl

from cmrbias_dagster.lib.study_design import Experiment


class InfeasibleDesignError(ValueError):
    """The manifest has too few subjects in some stratum for the requested draw."""


def stratum_candidates(manifest: pl.DataFrame, experiment: Experiment) -> pl.DataFrame:
    """Subjects in the experiment's strata, with `unusable` saying why one cannot be drawn."""
    held_attribute = experiment.held_attribute
    columns = ["subject_id", experiment.attribute, *([held_attribute] if held_attribute else [])]
    missing = [column for column in columns if column not in manifest.columns]
    if missing:
        raise InfeasibleDesignError(
            f"experiment {experiment.name!r}: manifest lacks columns {missing} (the cohort's "
            f"layout does not provide them; it has {', '.join(manifest.columns[:12])}, ...)"
        )
    duplicated = manifest.filter(pl.col("subject_id").is_duplicated())["subject_id"].unique()
    if len(duplicated):
        raise ValueError(f"manifest lists subjects more than once: {sorted(duplicated)[:10]}")
    # Every experiment trains and scores all three classes, so a subject lacking one is unusable.
    gaps = pl.col("missing_classes") if "missing_classes" in manifest.columns else pl.lit("")
    held = pl.col(held_attribute).cast(pl.String) if held_attribute else pl.lit(None, pl.String)
    candidates = manifest.select(
        pl.col("subject_id").cast(pl.String),
        pl.col(experiment.attribute).cast(pl.String).alias("group"),
        held.alias("held"),
        gaps.fill_null("").alias("unusable"),
    ).filter(pl.col("group").is_in(list(experiment.groups)))
    if experiment.held_values:
        candidates = candidates.filter(pl.col("held").is_in(list(experiment.held_values)))
    return candidates


def unusable_note(candidates: pl.DataFrame) -> str:
    """For an error message: how many candidates lack a class, with up to five examples."""
    unusable = candidates.filter(pl.col("unusable") != "")
    if not unusable.height:
        return ""
    examples = "; ".join(
        f"{subject} lacks {gaps}"
        for subject, gaps in unusable.select("subject_id", "unusable").head(5).rows()
    )
    return f" ({unusable.height} subject(s) of these strata are unusable: {examples})"


def values_note(manifest: pl.DataFrame, experiment: Experiment) -> str:
    """For an error message: the values the manifest has where the design asks for others."""
    notes = []
    for column, wanted in (
        (experiment.attribute, experiment.groups),
        (experiment.held_attribute, experiment.held_values),
    ):
        if column is None or wanted is None:
            continue
        present = sorted(manifest[column].drop_nulls().cast(pl.String).unique().to_list())
        if not set(wanted) <= set(present):
            notes.append(f"{column} values in the manifest: {', '.join(present[:10]) or 'none'}")
    return f" ({'; '.join(notes)})" if notes else ""
