import hashlib
from pathlib import Path

import polars as pl
import pytest

from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.splits.sampling import (
    InfeasibleDesignError,
    draw_test_set,
    draw_training_split,
    rank_subjects,
    stratum_counts,
)

DESIGN = load_study_design(Path(__file__).resolve().parents[1] / "data" / "study.yaml")
SEED = DESIGN.seed
RACES = ("white", "black", "asian")
SEXES = ("female", "male")


def make_manifest(per_stratum: int, prefix: str = "s") -> pl.DataFrame:
    """`per_stratum` subjects for every race x sex, with ids unique to the prefix."""
    rows = [
        (f"{prefix}-{race}-{sex}-{i:04d}", race, sex)
        for race in RACES
        for sex in SEXES
        for i in range(per_stratum)
    ]
    return pl.DataFrame(rows, schema=["subject_id", "race", "sex"], orient="row")


def stratum_sizes(frame: pl.DataFrame) -> dict[tuple[str, str], int]:
    return {(group, held): n for group, held, n in frame.group_by("group", "held").len().rows()}


def first_by_rank(ids: list[str], salt: str, n: int) -> list[str]:
    """Independent reference ranking: sha256 hex digest, then subject id."""
    return sorted(ids, key=lambda sid: (hashlib.sha256(f"{salt}:{sid}".encode()).hexdigest(), sid))[
        :n
    ]


@pytest.fixture(scope="module")
def manifest() -> pl.DataFrame:
    return make_manifest(120)


@pytest.mark.parametrize("experiment", DESIGN.experiments, ids=DESIGN.experiment_names)
@pytest.mark.parametrize("ratio", [0, 25, 50, 75, 100])
@pytest.mark.parametrize(("train_size", "test_size"), [(176, 84), (32, 24)])
def test_counts_are_exact(
    manifest: pl.DataFrame, experiment: Experiment, ratio: int, train_size: int, test_size: int
) -> None:
    test_set = draw_test_set(manifest, experiment, test_size, SEED)
    split = draw_training_split(
        manifest, test_set["subject_id"], experiment, ratio, train_size, SEED
    )
    first, second = experiment.groups
    n_first = train_size * ratio // 100
    expected = {
        (group, held): n // 2
        for group, n in ((first, n_first), (second, train_size - n_first))
        for held in experiment.held_values
        if n
    }
    assert stratum_sizes(split) == expected
    assert stratum_sizes(test_set) == {
        (group, held): test_size // 4
        for group in experiment.groups
        for held in experiment.held_values
    }
    assert set(split["subject_id"]).isdisjoint(test_set["subject_id"])
    assert split.columns == ["subject_id", "group", "held", "stratum_rank", "experiment", "ratio"]
    assert split["ratio"].unique().to_list() == [ratio]
    assert split["experiment"].unique().to_list() == [experiment.name]
    assert split.equals(split.sort("group", "held", "stratum_rank"))
    ranks = split.group_by("group", "held").agg(pl.col("stratum_rank").sort()).rows()
    assert all(stratum_ranks == list(range(len(stratum_ranks))) for _, _, stratum_ranks in ranks)


def test_draw_matches_reference_ranking(manifest: pl.DataFrame) -> None:
    experiment = DESIGN.experiment("race_black")
    test_set = draw_test_set(manifest, experiment, 24, SEED)
    ids = manifest.filter(race="black", sex="female")["subject_id"].to_list()
    chosen = test_set.filter(group="black", held="female")["subject_id"].to_list()
    assert chosen == first_by_rank(ids, f"test:{SEED}", 6)
    split = draw_training_split(manifest, test_set["subject_id"], experiment, 50, 32, SEED)
    rest = [sid for sid in ids if sid not in set(chosen)]
    chosen = split.filter(group="black", held="female")["subject_id"].to_list()
    assert chosen == first_by_rank(rest, f"train:{SEED}", 8)


def test_rank_subjects_orders_by_digest() -> None:
    ids = [f"subject-{i}" for i in range(50)]
    ranked = rank_subjects(ids, 3, "train:")
    assert ranked["subject_id"].to_list() == first_by_rank(ids, "train:3", 50)
    assert ranked["rank"].to_list() == list(range(50))


def test_stratum_counts() -> None:
    experiment = DESIGN.experiment("sex")
    assert stratum_counts(experiment, 25, 32) == {
        ("female", "black"): 4,
        ("female", "white"): 4,
        ("male", "black"): 12,
        ("male", "white"): 12,
    }
    with pytest.raises(InfeasibleDesignError, match="training size 30"):
        stratum_counts(experiment, 25, 30)


@pytest.mark.parametrize("experiment", DESIGN.experiments, ids=DESIGN.experiment_names)
def test_same_seed_same_draw_other_seed_other_draw(
    manifest: pl.DataFrame, experiment: Experiment
) -> None:
    def draw(seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        test_set = draw_test_set(manifest, experiment, 24, seed)
        return test_set, draw_training_split(
            manifest, test_set["subject_id"], experiment, 50, 32, seed
        )

    first, again, other = draw(SEED), draw(SEED), draw(SEED + 1)
    assert first[0].equals(again[0]) and first[1].equals(again[1])
    assert set(first[0]["subject_id"]) != set(other[0]["subject_id"])
    assert set(first[1]["subject_id"]) != set(other[1]["subject_id"])


def test_sex_and_race_black_share_the_test_set(manifest: pl.DataFrame) -> None:
    by_sex = draw_test_set(manifest, DESIGN.experiment("sex"), 84, SEED)
    by_race = draw_test_set(manifest, DESIGN.experiment("race_black"), 84, SEED)
    assert by_sex.height == 84
    assert sorted(by_sex.select("subject_id", "stratum_rank").rows()) == sorted(
        by_race.select("subject_id", "stratum_rank").rows()
    )


def test_subjects_outside_the_strata_are_not_candidates(manifest: pl.DataFrame) -> None:
    experiment = DESIGN.experiment("race_black")
    test_set = draw_test_set(manifest, experiment, 84, SEED)
    split = draw_training_split(manifest, test_set["subject_id"], experiment, 50, 176, SEED)
    asian = set(manifest.filter(race="asian")["subject_id"])
    assert asian.isdisjoint(test_set["subject_id"]) and asian.isdisjoint(split["subject_id"])


def test_infeasible_training_split_names_every_short_stratum() -> None:
    manifest = make_manifest(40)
    experiment = DESIGN.experiment("race_black")
    test_set = draw_test_set(manifest, experiment, 24, SEED)
    with pytest.raises(InfeasibleDesignError) as raised:
        draw_training_split(manifest, test_set["subject_id"], experiment, 100, 176, SEED)
    message = str(raised.value)
    assert "'race_black'" in message and "ratio 100" in message
    assert "race=black, sex=female: needed 88, available 34" in message
    assert "race=black, sex=male: needed 88, available 34" in message
    assert "race=white" not in message


def test_infeasible_test_set_names_the_stratum() -> None:
    manifest = make_manifest(40).filter(
        ~(
            (pl.col("race") == "asian")
            & (pl.col("sex") == "male")
            & (pl.col("subject_id") > "s-asian-male-0003")
        )
    )
    with pytest.raises(
        InfeasibleDesignError,
        match=r"'race_asian', test set: .*race=asian, sex=male: needed 6, available 4",
    ):
        draw_test_set(manifest, DESIGN.experiment("race_asian"), 24, SEED)


def test_newcomers_change_only_the_splits_they_rank_inside() -> None:
    manifest = make_manifest(40)
    newcomers = make_manifest(2, prefix="new").head(10)
    grown = pl.concat([manifest, newcomers])
    new_ids = set(newcomers["subject_id"])
    changed, expected = set(), set()
    for experiment in DESIGN.experiments:
        # The test set is held fixed so that newcomers are the only difference between the draws.
        test_ids = set(draw_test_set(manifest, experiment, 24, SEED)["subject_id"])
        for ratio in DESIGN.ratios:
            before = draw_training_split(manifest, test_ids, experiment, ratio, 32, SEED)
            after = draw_training_split(grown, test_ids, experiment, ratio, 32, SEED)
            if not before.equals(after):
                changed.add((experiment.name, ratio))
            for (group, held), needed in stratum_counts(experiment, ratio, 32).items():
                stratum = grown.filter(
                    pl.col(experiment.attribute) == group,
                    pl.col(experiment.held_attribute) == held,
                    ~pl.col("subject_id").is_in(list(test_ids)),
                )["subject_id"].to_list()
                if new_ids & set(first_by_rank(stratum, f"train:{SEED}", needed)):
                    expected.add((experiment.name, ratio))
    assert changed == expected
    all_splits = {
        (experiment, ratio) for experiment in DESIGN.experiment_names for ratio in DESIGN.ratios
    }
    assert expected and expected != all_splits


@pytest.mark.parametrize("experiment", DESIGN.experiments, ids=DESIGN.experiment_names)
def test_newcomers_change_the_test_set_only_when_they_rank_inside(experiment: Experiment) -> None:
    manifest = make_manifest(40)
    newcomers = make_manifest(2, prefix="new").head(10)
    grown = pl.concat([manifest, newcomers])
    outcomes = set()
    for seed in range(20):
        before = draw_test_set(manifest, experiment, 24, seed)
        after = draw_test_set(grown, experiment, 24, seed)
        expected = {
            sid
            for group in experiment.groups
            for held in experiment.held_values
            for sid in first_by_rank(
                grown.filter(
                    pl.col(experiment.attribute) == group,
                    pl.col(experiment.held_attribute) == held,
                )["subject_id"].to_list(),
                f"test:{seed}",
                6,
            )
        }
        newcomer_inside = not expected.isdisjoint(newcomers["subject_id"])
        assert set(after["subject_id"]) == expected
        assert before.equals(after) is not newcomer_inside
        outcomes.add(newcomer_inside)
    assert outcomes == {True, False}


def test_missing_manifest_column_is_named() -> None:
    with pytest.raises(ValueError, match=r"manifest lacks columns \['race'\]"):
        draw_test_set(make_manifest(10).drop("race"), DESIGN.experiment("sex"), 24, SEED)
