"""Cross-validation folds for a training split, and nnU-Net's splits_final.json built from them."""

from collections.abc import Sequence

import polars as pl

from cmrbias_dagster.lib.splits.sampling import rank_subjects

_FOLD_SALT = "fold:"


def case_id(subject_id: str, phase: str) -> str:
    """The nnU-Net case identifier of one cardiac phase of a subject."""
    return f"{subject_id}_{phase}"


def assign_folds(split: pl.DataFrame, n_folds: int, seed: int) -> pl.DataFrame:
    """Add an int `fold` column, grouped by subject and stratified by `group` and `held` (by
    `group` alone where `held` is null: an experiment without a held attribute).

    Subjects are ordered by stratum (its values sorted, so the order does not depend on which
    attribute is the group), then by seeded hash, and dealt round-robin; the deal carries
    on across strata, so fold sizes differ by at most one overall and within each stratum.
    """
    missing = [column for column in ("subject_id", "group", "held") if column not in split.columns]
    if missing:
        raise ValueError(f"split lacks columns {missing} needed to assign folds")
    duplicated = split.filter(pl.col("subject_id").is_duplicated())["subject_id"].unique()
    if len(duplicated):
        raise ValueError(f"split lists subjects more than once: {sorted(duplicated)[:10]}")
    if n_folds < 2 or n_folds > split.height:
        raise ValueError(f"cannot deal {split.height} subjects into {n_folds} folds (need 2..n)")
    ranks = rank_subjects(split["subject_id"], seed, _FOLD_SALT)
    # A stratum is named by its values in sorted order, whichever attribute is the experiment's
    # group: two experiments that draw the same subjects (e.g. `sex|50` and `race_black|50`) then
    # deal the same folds, so their trainings are identical and one serves both.
    stratum = pl.concat_list("group", "held").list.drop_nulls().list.sort().list.join("|")
    dealt = (
        split.select("subject_id", "group", "held")
        .join(ranks, on="subject_id")
        .sort(stratum, "rank")
        .with_row_index("position")
        .select("subject_id", fold=(pl.col("position") % n_folds).cast(pl.Int64))
    )
    return split.join(dealt, on="subject_id", how="left", maintain_order="left")


def nnunet_splits(
    split_with_folds: pl.DataFrame, phases: Sequence[str] = ("ED", "ES")
) -> list[dict[str, list[str]]]:
    """nnU-Net's splits_final.json: per fold, its subjects' cases as `val`, all others `train`."""
    folds = sorted(split_with_folds["fold"].unique().to_list())
    if folds != list(range(len(folds))):
        raise ValueError(f"folds must be numbered 0..n-1 without gaps, got {folds}")
    cases_by_fold = {
        fold: sorted(
            case_id(subject_id, phase)
            for subject_id in split_with_folds.filter(pl.col("fold") == fold)["subject_id"]
            for phase in phases
        )
        for fold in folds
    }
    return [
        {
            "train": sorted(
                case for other, cases in cases_by_fold.items() if other != fold for case in cases
            ),
            "val": cases_by_fold[fold],
        }
        for fold in folds
    ]
