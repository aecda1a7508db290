"""The partition key's one codec (lib/design/partition.py): every key Dagster writes for the study
decodes to its experiment and ratio and encodes back; a key of another form, experiment or ratio
fails naming the key; the dataset id and name and the seeds follow the partition's place."""

from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from cmrbias_dagster.lib.design.partition import (
    PartitionKeyError,
    dataset_name,
    partition_key,
    split_partition_key,
    stable_dataset_id,
    study_partition,
    study_partitions,
)
from cmrbias_dagster.lib.design.study import StudyDesignError, parse_study_design
from cmrbias_dagster.lib.design.study_file import load_study_design

DESIGN = load_study_design(Path(__file__).resolve().parents[1] / "data" / "study.yaml")
QUICK = DESIGN.profile("quick")


def test_every_dagster_key_decodes_and_encodes_back() -> None:
    """The codec agrees with the keys Dagster makes for experiment x ratio, as strings and as
    MultiPartitionKey objects."""
    dimensions = {
        "experiment": dg.StaticPartitionsDefinition(DESIGN.experiment_names),
        "ratio": dg.StaticPartitionsDefinition([str(ratio) for ratio in DESIGN.ratios]),
    }
    keys = dg.MultiPartitionsDefinition(dimensions).get_partition_keys()
    assert len(keys) == len(DESIGN.experiment_names) * len(DESIGN.ratios)
    for key in keys:
        by_dimension = key.keys_by_dimension
        partition = study_partition(DESIGN, QUICK, key)
        assert partition.experiment.name == by_dimension["experiment"]
        assert partition.ratio == int(by_dimension["ratio"])
        assert (
            partition.key == str(key) == partition_key(partition.experiment.name, partition.ratio)
        )
        assert study_partition(DESIGN, QUICK, str(key)) == partition


def test_dagster_joins_the_dimensions_in_alphabetical_order() -> None:
    key = dg.MultiPartitionKey({"ratio": "50", "experiment": "race_black"})
    assert str(key) == partition_key("race_black", 50) == "race_black|50"
    assert split_partition_key(key) == ("race_black", 50)


@pytest.mark.parametrize("key", ["race_black", "race_black|", "|50", "race_black|fifty", "50|"])
def test_a_key_of_another_form_fails_naming_it(key: str) -> None:
    with pytest.raises(PartitionKeyError, match=rf"partition key {key!r} is not '<experiment>\|"):
        split_partition_key(key)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("race_white|50", r"'race_white\|50': unknown experiment 'race_white'; known: \['sex'"),
        ("race_black|30", r"'race_black\|30': ratio 30 is not one of \[0, 25, 50, 75, 100\]"),
        ("race_black|-50", r"'race_black\|-50' is not '<experiment>\|<ratio>'"),
    ],
)
def test_a_key_outside_the_design_fails_naming_it(key: str, message: str) -> None:
    with pytest.raises(PartitionKeyError, match=message) as error:
        study_partition(DESIGN, QUICK, key)
    assert isinstance(error.value, StudyDesignError)


def test_the_partition_carries_its_dataset_seeds_and_training() -> None:
    partition = study_partition(DESIGN, QUICK, "race_black|50")
    assert (partition.dataset_id, partition.dataset) == (512, "Dataset512_race_black_50")
    assert partition.repeat == 1
    assert partition.draw_seed == DESIGN.seed
    assert partition.training == replace(QUICK.training, seed=DESIGN.seed)
    assert partition.experiment == DESIGN.experiment("race_black")


def test_study_partitions_lists_each_experiment_at_each_ratio_with_distinct_datasets() -> None:
    partitions = study_partitions(DESIGN, QUICK)
    assert [p.key for p in partitions] == [
        f"{e}|{r}" for e in DESIGN.experiment_names for r in DESIGN.ratios
    ]
    assert len({p.dataset_id for p in partitions}) == len(partitions)


def test_a_repeat_draws_and_trains_with_its_own_seed() -> None:
    design = parse_study_design(
        {
            "seed": 7,
            "ratios": [0, 50, 100],
            "repeats": 3,
            "experiments": {"sex": {"attribute": "sex", "groups": ["female", "male"]}},
            "profiles": {"quick": {"train_size": 8, "test_size": 8, "folds": 2}},
        }
    )
    profile = design.profile("quick")
    first, third = (study_partition(design, profile, key) for key in ("sex|50", "sex_r3|50"))
    assert (first.repeat, third.repeat) == (1, 3)
    assert (first.draw_seed, third.draw_seed) == (7, 2007)
    assert (first.training.seed, third.training.seed) == (7, 2007)
    assert (first.dataset, third.dataset) == ("Dataset501_sex_50", "Dataset521_sex_r3_50")
    assert third.experiment.base == "sex"


@pytest.mark.parametrize(
    ("experiment", "ratio", "expected"),
    [(0, 0, 500), (0, 6, 506), (3, 2, 532), (49, 9, 999)],
)
def test_stable_dataset_id(experiment: int, ratio: int, expected: int) -> None:
    assert stable_dataset_id(experiment, ratio) == expected


@pytest.mark.parametrize(
    ("experiment", "ratio", "base"), [(50, 0, 500), (0, 10, 500), (-1, 0, 500)]
)
def test_stable_dataset_id_out_of_range(experiment: int, ratio: int, base: int) -> None:
    with pytest.raises(ValueError):
        stable_dataset_id(experiment, ratio, base)


def test_dataset_name() -> None:
    assert dataset_name(7, "race_black", 50) == "Dataset007_race_black_50"
    with pytest.raises(ValueError):
        dataset_name(1000, "race_black", 50)


def test_a_key_as_a_file_name_part() -> None:
    from cmrbias_dagster.lib.design.partition import file_name_of_key

    assert file_name_of_key("race_black|50") == "race_black-50"
    assert file_name_of_key("race_black") == "race_black"
