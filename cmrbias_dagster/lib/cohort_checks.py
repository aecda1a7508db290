"""Checks on a subject manifest against the study design, free of Dagster."""

import polars as pl

from cmrbias_dagster.lib.study_design import StudyDesign


def stratum_shortfalls(manifest: pl.DataFrame, design: StudyDesign, profile: str) -> pl.DataFrame:
    """Per experiment stratum (group x held value): subjects needed by the profile vs available.

    The largest need of a stratum is its test share plus half the training set (the ratio at which
    its group fills the whole training set). Subjects lacking a class, and attributes the
    manifest does not have, count as none available.
    """
    settings = design.profile(profile)
    needed = settings.test_size // 4 + settings.train_size // 2
    if "missing_classes" in manifest.columns:
        manifest = manifest.filter(pl.col("missing_classes") == "")
    rows = []
    for experiment in design.experiments:
        known = {experiment.attribute, experiment.held_attribute} <= set(manifest.columns)
        for group in experiment.groups:
            for held in experiment.held_values:
                available = (
                    manifest.filter(
                        (pl.col(experiment.attribute) == group)
                        & (pl.col(experiment.held_attribute) == held)
                    ).height
                    if known
                    else 0
                )
                rows.append(
                    {
                        "experiment": experiment.name,
                        "stratum": f"{experiment.attribute}={group}, "
                        f"{experiment.held_attribute}={held}",
                        "needed": needed,
                        "available": available,
                        "enough": available >= needed,
                    }
                )
    return pl.DataFrame(rows)
