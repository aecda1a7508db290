"""Stable, hash-ranked stratified sampling of the test set and the training splits.

Every subject gets a rank from sha256 of a salted seed and its id; a stratum (one group value x one
held value, or one group value when the experiment holds nothing; its `held` is then null)
contributes its first n subjects by that rank. Adding subjects to the manifest therefore
changes a draw only when a newcomer ranks inside it.

The test set depends only on the strata (the set of attribute values, whichever attribute is called
the "group"), the size and the seed: experiments with the same strata share one test set, e.g. `sex`
(female/male x black/white) and `race_black` (black/white x female/male), as in Lee et al. 2022.
Test and training draws use different salts ("test:", "train:") so their rankings are independent.
Training rankings do not depend on the ratio, so the splits of one experiment are nested.
"""

import hashlib
from collections.abc import Collection, Iterable

import polars as pl

from cmrbias_dagster.lib.design.experiment import Experiment

_TEST_SALT = "test:"
_TRAIN_SALT = "train:"


def rank_subjects(
    subject_ids: pl.Series | Iterable[str], seed: int, salt: str = ""
) -> pl.DataFrame:
    """Rank subjects by sha256(f"{salt}{seed}:{subject_id}"), ties broken by subject id.

    Returns columns `subject_id` and `rank` (0 = first).
    """
    keyed = sorted(
        (hashlib.sha256(f"{salt}{seed}:{subject_id}".encode()).hexdigest(), subject_id)
        for subject_id in subject_ids
    )
    return pl.DataFrame(
        {"subject_id": [subject_id for _, subject_id in keyed], "rank": range(len(keyed))},
        schema={"subject_id": pl.String, "rank": pl.Int64},
    )


def strata_per_group(experiment: Experiment) -> int:
    """Strata each group splits into: its two held values, or one when nothing is held."""
    return len(experiment.strata) // len(experiment.groups)


def stratum_counts(
    experiment: Experiment, ratio: int, size: int
) -> dict[tuple[str, str | None], int]:
    """Training subjects per (group, held value): ratio% from the first group, held 50/50."""
    if not 0 <= ratio <= 100:
        raise InfeasibleDesignError(
            f"experiment {experiment.name!r}: ratio {ratio} is not a percentage in [0, 100]"
        )
    parts = strata_per_group(experiment)
    first, remainder = divmod(size * ratio, 100)
    second = size - first
    if remainder or first % parts or second % parts:
        even = "even " if parts == 2 else ""
        raise InfeasibleDesignError(
            f"experiment {experiment.name!r}, ratio {ratio}: training size {size} does not split "
            f"into {even}integer group counts"
        )
    per_stratum = dict(zip(experiment.groups, (first // parts, second // parts), strict=True))
    return {(group, held): per_stratum[group] for group, held in experiment.strata}


def draw_test_set(
    manifest: pl.DataFrame, experiment: Experiment, size: int, seed: int
) -> pl.DataFrame:
    """The first size/4 subjects by test rank from each (group, held value) stratum (size/2 from
    each group when the experiment holds nothing)."""
    strata = len(experiment.strata)
    if size <= 0 or size % strata:
        raise InfeasibleDesignError(
            f"experiment {experiment.name!r}, test set: size {size} is not a positive multiple "
            f"of {strata}"
        )
    counts = {stratum: size // strata for stratum in experiment.strata}
    candidates = stratum_candidates(manifest, experiment)
    drawn = _draw(candidates, counts, seed, _TEST_SALT, experiment, "test set", manifest)
    return drawn.with_columns(experiment=pl.lit(experiment.name))


def draw_training_split(
    manifest: pl.DataFrame,
    test_ids: Collection[str],
    experiment: Experiment,
    ratio: int,
    size: int,
    seed: int,
) -> pl.DataFrame:
    """The training split at `ratio`% of the first group, drawn from subjects outside `test_ids`."""
    counts = stratum_counts(experiment, ratio, size)
    candidates = stratum_candidates(manifest, experiment).filter(
        ~pl.col("subject_id").is_in(list(test_ids))
    )
    drawn = _draw(candidates, counts, seed, _TRAIN_SALT, experiment, f"ratio {ratio}", manifest)
    return drawn.with_columns(
        experiment=pl.lit(experiment.name), ratio=pl.lit(ratio, dtype=pl.Int64)
    )


def _draw(
    candidates: pl.DataFrame,
    counts: dict[tuple[str, str | None], int],
    seed: int,
    salt: str,
    experiment: Experiment,
    label: str,
    manifest: pl.DataFrame,
) -> pl.DataFrame:
    usable = candidates.filter(pl.col("unusable") == "")
    available = {
        (group, held): n for group, held, n in usable.group_by("group", "held").len().rows()
    }
    short = [
        f"{experiment.stratum_label(group, held)}: "
        f"needed {needed}, available {available.get((group, held), 0)}"
        for (group, held), needed in counts.items()
        if needed > available.get((group, held), 0)
    ]
    if short:
        raise InfeasibleDesignError(
            f"experiment {experiment.name!r}, {label}: too few subjects in "
            + "; ".join(short)
            + values_note(manifest, experiment)
            + unusable_note(candidates)
        )
    needed = pl.DataFrame(
        [(group, held, n) for (group, held), n in counts.items()],
        schema={"group": pl.String, "held": pl.String, "needed": pl.Int64},
        orient="row",
    )
    ranks = rank_subjects(usable["subject_id"], seed, salt)
    return (
        usable.join(ranks, on="subject_id")
        .with_columns(
            stratum_rank=(pl.col("rank").rank("ordinal").over("group", "held") - 1).cast(pl.Int64)
        )
        .join(needed, on=["group", "held"], nulls_equal=True)
        .filter(pl.col("stratum_rank") < pl.col("needed"))
        .select("subject_id", "group", "held", "stratum_rank")
        .sort("group", "held", "stratum_rank")
    )


# Who a draw can take: the subjects in an experiment's strata, and why others cannot be drawn.


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
