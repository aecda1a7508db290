"""Checks of drawn sets against the design (exact counts, balance, disjointness, grouped folds),
and of a cohort against the draws the design asks of it (subjects per stratum)."""

import polars as pl

from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.study import StudyDesign
from cmrbias_dagster.lib.splits.sampling import strata_per_group, stratum_counts


def stratum_table(drawn: pl.DataFrame) -> pl.DataFrame:
    """Subjects per (group, held value) of a drawn set (held null when nothing is held)."""
    return drawn.group_by("group", "held").len("subjects").sort("group", "held")


def is_balanced(drawn: pl.DataFrame, experiment: Experiment) -> bool:
    """Whether every stratum of the experiment, and no other, holds the same number of subjects."""
    found = {(g, h): n for g, h, n in stratum_table(drawn).rows()}
    return set(found) == set(experiment.strata) and len(set(found.values())) == 1


def count_mismatches(
    drawn: pl.DataFrame, experiment: Experiment, ratio: int, size: int
) -> list[str]:
    """Strata whose count differs from the exact count the ratio (and held 50/50) demand."""
    found = {(g, h): n for g, h, n in stratum_table(drawn).rows()}
    return [
        f"{experiment.stratum_label(group, held)}: "
        f"expected {needed}, found {found.get((group, held), 0)}"
        for (group, held), needed in stratum_counts(experiment, ratio, size).items()
        if found.get((group, held), 0) != needed
    ]


def overlap(training: pl.DataFrame, test: pl.DataFrame) -> list[str]:
    """Subject ids present in both the training split and the test set."""
    return sorted(set(training["subject_id"]) & set(test["subject_id"]))


def fold_problems(folds: pl.DataFrame, splits: list[dict[str, list[str]]]) -> list[str]:
    """Problems with grouped cross-validation: a subject's cases in two folds' validation sets,
    a case in both train and val of a fold, or a fold whose train+val is not every case."""
    problems = []
    all_cases = set(splits[0]["train"]) | set(splits[0]["val"])
    seen: dict[str, int] = {}
    for index, fold in enumerate(splits):
        if set(fold["train"]) & set(fold["val"]):
            problems.append(f"fold {index}: cases in both train and val")
        if set(fold["train"]) | set(fold["val"]) != all_cases:
            problems.append(f"fold {index}: train and val do not cover every case")
        for case in fold["val"]:
            subject = case.rsplit("_", 1)[0]
            if seen.setdefault(subject, index) != index:
                problems.append(f"subject {subject}: cases in the validation sets of two folds")
    if set(seen) != set(folds["subject_id"]):
        problems.append("validation sets do not hold every subject exactly once")
    return problems


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
