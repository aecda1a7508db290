"""Checks on a subject manifest against the study design, free of Dagster."""

import polars as pl

from cmrbias_dagster.lib.design.study import Experiment, StudyDesign
from cmrbias_dagster.lib.splits.sampling import strata_per_group


def stratum_shortfalls(manifest: pl.DataFrame, design: StudyDesign, profile: str) -> pl.DataFrame:
    """Per experiment stratum (group x held value, or group): subjects needed vs available.

    The largest need of a stratum is its test share plus its share of the whole training set (the
    ratio at which its group fills the training set). Subjects lacking a class, and attributes the
    manifest does not have, count as none available.
    """
    settings = design.profile(profile)
    if "missing_classes" in manifest.columns:
        manifest = manifest.filter(pl.col("missing_classes") == "")
    rows = []
    for experiment in design.experiments:
        parts = strata_per_group(experiment)
        needed = settings.test_size // (2 * parts) + settings.train_size // parts
        for group, held in experiment.strata:
            available = _stratum_size(manifest, experiment, group, held)
            rows.append(
                {
                    "experiment": experiment.name,
                    "stratum": experiment.stratum_label(group, held),
                    "needed": needed,
                    "available": available,
                    "enough": available >= needed,
                }
            )
    return pl.DataFrame(rows)


def _stratum_size(
    manifest: pl.DataFrame, experiment: Experiment, group: str, held: str | None
) -> int:
    """Subjects of one stratum; none when the manifest lacks one of its attributes."""
    attributes = {experiment.attribute: group}
    if experiment.held_attribute:
        attributes[experiment.held_attribute] = held
    if not set(attributes) <= set(manifest.columns):
        return 0
    return manifest.filter(*(pl.col(name) == value for name, value in attributes.items())).height
