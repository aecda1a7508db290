from collections import Counter

import polars as pl
import pytest

from cmrbias_dagster.lib.splits.folds import assign_folds, case_id, nnunet_splits


def make_split(n_first: int, n_second: int) -> pl.DataFrame:
    """A training split with `n_first`/`n_second` subjects of groups a/b, held values 50/50."""
    rows = [
        (f"{group}-{i:03d}", group, ("x", "y")[i % 2], i // 2)
        for group, n in (("a", n_first), ("b", n_second))
        for i in range(n)
    ]
    return pl.DataFrame(rows, schema=["subject_id", "group", "held", "stratum_rank"], orient="row")


SPLITS = [(0, 32), (8, 24), (16, 16), (24, 8), (44, 132), (176, 0), (3, 4)]


@pytest.mark.parametrize(("n_first", "n_second"), SPLITS)
@pytest.mark.parametrize("n_folds", [2, 5])
def test_folds_are_balanced_and_stratified(n_first: int, n_second: int, n_folds: int) -> None:
    split = make_split(n_first, n_second)
    folded = assign_folds(split, n_folds, seed=2022)
    assert folded.drop("fold").equals(split)
    assert folded["fold"].dtype == pl.Int64
    sizes = Counter(folded["fold"].to_list())
    assert set(sizes) == set(range(n_folds))
    assert max(sizes.values()) - min(sizes.values()) <= 1
    for (_, _), stratum in folded.group_by("group", "held"):
        stratum_sizes = Counter(stratum["fold"].to_list()).values()
        assert max(stratum_sizes) - min(stratum_sizes, default=0) <= 1
    for (group,), members in folded.group_by("group"):
        if members.height >= n_folds:
            assert set(members["fold"]) == set(range(n_folds)), group


def test_folds_depend_on_the_seed() -> None:
    split = make_split(16, 16)
    assert assign_folds(split, 5, seed=1).equals(assign_folds(split, 5, seed=1))
    assert not assign_folds(split, 5, seed=1).equals(assign_folds(split, 5, seed=2))


@pytest.mark.parametrize(("n_first", "n_second"), SPLITS)
@pytest.mark.parametrize("phases", [("ED", "ES"), ("ED",)])
def test_nnunet_splits_cover_every_case_once(
    n_first: int, n_second: int, phases: tuple[str, ...]
) -> None:
    folded = assign_folds(make_split(n_first, n_second), 2, seed=2022)
    splits = nnunet_splits(folded, phases)
    all_cases = {case_id(sid, phase) for sid in folded["subject_id"] for phase in phases}
    assert len(splits) == 2
    for fold, entry in enumerate(splits):
        assert set(entry) == {"train", "val"}
        assert entry["train"] == sorted(entry["train"]) and entry["val"] == sorted(entry["val"])
        assert set(entry["train"]).isdisjoint(entry["val"])
        assert set(entry["train"]) | set(entry["val"]) == all_cases
        fold_subjects = folded.filter(pl.col("fold") == fold)["subject_id"]
        assert entry["val"] == sorted(case_id(sid, p) for sid in fold_subjects for p in phases)
    assert Counter(case for entry in splits for case in entry["val"]) == Counter(all_cases)


def test_case_id() -> None:
    assert case_id("UKB-0001", "ES") == "UKB-0001_ES"


@pytest.mark.parametrize(
    ("split", "n_folds", "message"),
    [
        (make_split(2, 2), 5, "cannot deal 4 subjects into 5 folds"),
        (make_split(2, 2), 1, "cannot deal 4 subjects into 1 folds"),
        (make_split(2, 2).drop("held"), 2, r"split lacks columns \['held'\]"),
        (pl.concat([make_split(2, 2), make_split(1, 0)]), 2, r"more than once: \['a-000'\]"),
    ],
)
def test_assign_folds_rejects(split: pl.DataFrame, n_folds: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assign_folds(split, n_folds, seed=0)


def test_nnunet_splits_rejects_gaps() -> None:
    folded = make_split(4, 4).with_columns(fold=pl.Series([0, 0, 2, 2, 0, 0, 2, 2]))
    with pytest.raises(ValueError, match=r"without gaps, got \[0, 2\]"):
        nnunet_splits(folded)


def test_the_same_subjects_get_the_same_folds_whichever_attribute_is_the_group() -> None:
    """`sex|50` and `race_black|50` draw the same four strata: their folds must agree, so the
    training stamp matches and one training serves both partitions."""
    subjects = [
        (f"S{index:03d}", sex, race)
        for index, (sex, race) in enumerate(
            [(s, r) for s in ("female", "male") for r in ("black", "white")] * 6
        )
    ]
    by_sex = pl.DataFrame(subjects, schema=["subject_id", "group", "held"], orient="row")
    by_race = by_sex.select(
        "subject_id", pl.col("held").alias("group"), pl.col("group").alias("held")
    )
    folds_by_sex = assign_folds(by_sex, 5, seed=3).select("subject_id", "fold").sort("subject_id")
    folds_by_race = assign_folds(by_race, 5, seed=3).select("subject_id", "fold").sort("subject_id")
    assert folds_by_sex.equals(folds_by_race)
    assert nnunet_splits(assign_folds(by_sex, 5, 3)) == nnunet_splits(assign_folds(by_race, 5, 3))
