import copy
import re
from pathlib import Path

import pytest
import yaml

from cmrbias_dagster.lib.study_design import (
    StudyDesignError,
    load_study_design,
    parse_study_design,
)

STUDY_YAML = Path(__file__).resolve().parents[1] / "data" / "study.yaml"

VALID = {
    "seed": 7,
    "ratios": [0, 25, 50, 75, 100],
    "experiments": {
        "sex": {
            "attribute": "sex",
            "groups": ["female", "male"],
            "held_attribute": "race",
            "held_values": ["black", "white"],
        }
    },
    "profiles": {"quick": {"train_size": 32, "test_size": 24, "folds": 5}},
}


_DELETE = object()


def _broken(path: tuple, value: object) -> dict:
    mapping = copy.deepcopy(VALID)
    *parents, last = path
    target = mapping
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return mapping


def test_repo_study_design_loads() -> None:
    design = load_study_design(STUDY_YAML)
    assert design.experiment_names == ["sex", "race_black", "race_asian"]
    assert [profile.name for profile in design.profiles] == ["quick", "paper", "tiny"]
    assert design.ratios == (0, 25, 50, 75, 100)
    assert design.experiment("race_black").groups == ("black", "white")
    paper = design.profile("paper")
    assert (paper.train_size, paper.test_size, paper.folds) == (176, 84, 5)
    assert paper.synthetic_cohort["subjects"]["black"]["female"] == 119
    assert paper.nnunet == {"batch_size": 16}


def test_valid_mapping_parses_with_defaults() -> None:
    design = parse_study_design(VALID)
    assert design.seed == 7
    assert design.profile("quick").synthetic_cohort == {}


@pytest.mark.parametrize("lookup", ["experiment", "profile"])
def test_unknown_name_lists_known_names(lookup: str) -> None:
    design = parse_study_design(VALID)
    with pytest.raises(StudyDesignError, match=r"unknown .*'nope'.*\['(sex|quick)'\]"):
        getattr(design, lookup)("nope")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("seed",), _DELETE, "missing required field 'seed'"),
        (("seed",), "2022", "'seed' must be an integer"),
        (("ratios",), [], "'ratios' must be a non-empty list"),
        (("ratios",), [0, 50, 150], r"'ratios' must lie in \[0, 100\]"),
        (("ratios",), [50, 0], "'ratios' must be unique and ascending"),
        (("ratios",), [0, 50, 50], "'ratios' must be unique and ascending"),
        (("ratios",), [0, True], "'ratios' must be an integer"),
        (("experiments",), {}, "must each list at least one"),
        (("experiments", "Sex|x"), VALID["experiments"]["sex"], "experiment 'Sex|x': name must"),
        (("experiments", "sex", "attribute"), _DELETE, "'sex': missing required field 'attribute'"),
        (("experiments", "sex", "groups"), ["female"], "'sex': field 'groups' must list two"),
        (
            ("experiments", "sex", "groups"),
            ["male", "male"],
            "field 'groups' must list two distinct",
        ),
        (("experiments", "sex", "held_values"), ["black"], "field 'held_values' must list two"),
        (("experiments", "sex", "held_values"), [True, False], "'held_values' must be a non-empty"),
        (("experiments", "sex", "held_attribute"), "sex", "'held_attribute' must differ"),
        (
            ("profiles", "quick", "folds"),
            _DELETE,
            "profile 'quick': missing required field 'folds'",
        ),
        (("profiles", "quick", "folds"), 1, "'folds' must be at least 2"),
        (("profiles", "quick", "train_size"), 0, "'train_size' must be positive"),
        (("profiles", "quick", "test_size"), -4, "'test_size' must be positive"),
        (("profiles", "quick", "test_size"), 22, "'test_size' must be divisible by 4"),
        (("profiles", "quick", "train_size"), 30, "'train_size' 30 at ratio 25"),
        (("profiles", "quick", "train_size"), 20, "'train_size' 20 at ratio 25 gives 5"),
        (("profiles", "quick", "synthetic_cohort"), [1, 2], "profile 'quick': expected a mapping"),
        (("profiles", "quick", "nnunet"), "fast", "profile 'quick': expected a mapping"),
    ],
)
def test_broken_design_names_the_field(path: tuple, value: object, message: str) -> None:
    with pytest.raises(StudyDesignError, match=message):
        parse_study_design(_broken(path, value), source="study.yaml")


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_broken(("seed",), _DELETE)))
    with pytest.raises(StudyDesignError, match=re.escape(f"{path}: missing required field 'seed'")):
        load_study_design(path)
