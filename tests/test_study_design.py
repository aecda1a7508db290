import copy
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.design.settings import PlanEdits
from cmrbias_dagster.lib.design.study import StudyDesignError, parse_study_design
from cmrbias_dagster.lib.design.study_file import load_study_design

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
    assert (paper.train_size, paper.test_size, paper.folds, paper.trained_folds) == (176, 84, 5, 5)
    assert paper.synthetic_cohort.subjects["black"]["female"] == 119
    assert paper.nnunet == PlanEdits(batch_size=16)


def test_valid_mapping_parses_with_defaults() -> None:
    design = parse_study_design(VALID)
    assert design.seed == 7
    assert design.profile("quick").synthetic_cohort is None
    assert design.profile("quick").trained_folds == 5  # every fold unless the profile says
    assert design.profile("quick").parallel_runs == 1  # one partition at a time unless it says


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
        (("profiles", "quick", "trained_folds"), 0, r"'trained_folds' must be between 1 and"),
        (("profiles", "quick", "trained_folds"), 6, r"'folds' \(5\), got 6"),
        (("profiles", "quick", "trained_folds"), "1", "'trained_folds' must be an integer"),
        (("profiles", "quick", "parallel_runs"), 0, "'parallel_runs' must be at least 1, got 0"),
        (("profiles", "quick", "parallel_runs"), 1.5, "'parallel_runs' must be an integer"),
        (
            ("profiles", "quick", "parallel_runs"),
            "many",
            "field 'parallel_runs' must be an integer or 'auto', got 'many'",
        ),
        (("profiles", "quick", "parallel_runs"), True, "'parallel_runs' must be an integer or"),
        (("profiles", "quick", "train_size"), 0, "'train_size' must be positive"),
        (("profiles", "quick", "test_size"), -4, "'test_size' must be positive"),
        (("profiles", "quick", "test_size"), 22, "'test_size' must be divisible by 4"),
        (("profiles", "quick", "train_size"), 30, "'train_size' 30 at ratio 25"),
        (("profiles", "quick", "train_size"), 20, "'train_size' 20 at ratio 25 gives 5"),
        (
            ("profiles", "quick", "synthetic_cohort"),
            [1, 2],
            "profile 'quick': block 'synthetic_cohort': expected a mapping",
        ),
        (("profiles", "quick", "nnunet"), "fast", "profile 'quick': block 'nnunet': expected a"),
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


def _without_held(**profile: int) -> dict:
    """VALID with its experiment holding nothing 50/50 (ACDC: pathology is the only attribute)."""
    mapping = copy.deepcopy(VALID)
    mapping["experiments"] = {"pathology_dcm": {"attribute": "pathology", "groups": ["dcm", "nor"]}}
    mapping["profiles"]["quick"].update(profile)
    return mapping


def test_design_without_held_attribute_loads_with_relaxed_sizes() -> None:
    design = parse_study_design(_without_held(train_size=12, test_size=6))
    experiment = design.experiment("pathology_dcm")
    assert (experiment.held_attribute, experiment.held_values) == (None, None)
    assert experiment.strata == (("dcm", None), ("nor", None))
    assert (design.profile("quick").train_size, design.profile("quick").test_size) == (12, 6)


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"test_size": 7}, r"'test_size' must be divisible by 2 \(two groups\), got 7"),
        ({"train_size": 10}, "'train_size' 10 at ratio 25 gives 2.5 and 7.5 .* must be integers$"),
    ],
)
def test_design_without_held_attribute_still_needs_exact_counts(profile, message) -> None:
    with pytest.raises(StudyDesignError, match=message):
        parse_study_design(_without_held(**profile), source="study.yaml")


def test_one_held_experiment_keeps_the_strict_sizes_for_every_profile() -> None:
    mapping = _without_held(train_size=12, test_size=8)
    mapping["experiments"]["sex"] = VALID["experiments"]["sex"]
    with pytest.raises(StudyDesignError, match="'train_size' 12 at ratio 25 gives 3 and 9"):
        parse_study_design(mapping)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (
            "held_values",
            "experiment 'sex': field 'held_attribute' 'race' needs 'held_values' listing the two",
        ),
        ("held_attribute", "experiment 'sex': field 'held_values' needs 'held_attribute'"),
    ],
)
def test_half_a_held_attribute_is_refused(drop: str, message: str) -> None:
    with pytest.raises(StudyDesignError, match=message):
        parse_study_design(_broken(("experiments", "sex", drop), _DELETE), source="study.yaml")


def test_example_acdc_design_fits_twenty_subjects_per_group() -> None:
    design = load_study_design(STUDY_YAML.parents[1] / "docs" / "study_acdc_pathology.yaml")
    assert all(e.attribute == "pathology" and e.held_attribute is None for e in design.experiments)
    assert all("nor" in e.groups for e in design.experiments)
    # A group gives half the test set, plus the whole training set at the ratio it fills it.
    assert all(p.test_size // 2 + p.train_size <= 20 for p in design.profiles)


def test_example_mitigation_design_varies_race_black_on_the_main_studys_profiles() -> None:
    design = load_study_design(STUDY_YAML.parents[1] / "docs" / "study_mitigation.yaml")
    main = load_study_design(STUDY_YAML)
    assert design.ratios == (0, 25) and design.seed == main.seed
    baseline, *variants = design.experiments
    assert baseline == main.experiment("race_black")
    strategies = [(v.mitigation.strategy, v.varies) for v in variants]
    expected = ("oversampling", "reweighting", "group_dro", "protected_models", "cropping")
    expected += (("cropping", "oversampling"), "error_bound_scaling")
    assert strategies == [(s, "race_black") for s in expected]
    # Same profiles as data/study.yaml: `make cohort` writes this design's cohort, and the
    # quick numbers are comparable with the main study's.
    for name in ("quick", "paper"):
        assert design.profile(name) == main.profile(name)


@pytest.mark.parametrize(
    ("block", "misspelt"),
    [
        ("nnunet", "batchsize"),
        ("training", "epoch"),
        ("convergence", "max_dice_gian"),
        ("prediction", "mirorring"),
        ("synthetic_cohort", "pixelmm"),
    ],
)
def test_misspelt_key_in_a_profile_block_fails_at_load_naming_it(
    tmp_path: Path, block: str, misspelt: str
) -> None:
    study = yaml.safe_load(STUDY_YAML.read_text())
    study["profiles"]["quick"][block][misspelt] = 1
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    with pytest.raises(StudyDesignError) as error:
        load_study_design(path)
    message = str(error.value)
    for named in (str(path), "profile 'quick'", f"block {block!r}", misspelt):
        assert named in message


def test_the_code_location_refuses_a_misspelt_key_when_it_loads(tmp_path: Path) -> None:
    study = yaml.safe_load(STUDY_YAML.read_text())
    study["profiles"]["tiny"]["training"]["iterations_per_epok"] = 3
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    loaded = subprocess.run(
        [sys.executable, "-c", "import cmrbias_dagster.definitions"],
        env={**os.environ, "CMRBIAS_STUDY_FILE": str(path), "CMRBIAS_PROFILE": "tiny"},
        capture_output=True,
        text=True,
    )
    assert loaded.returncode != 0
    assert "profile 'tiny': block 'training'" in loaded.stderr
    assert "iterations_per_epok" in loaded.stderr


def test_the_design_file_is_read_once_until_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(STUDY_YAML.read_text())
    first = load_study_design(path)
    assert load_study_design(path) is first
    changed = yaml.safe_load(STUDY_YAML.read_text())
    changed["seed"] = 7
    path.write_text(yaml.safe_dump(changed))
    assert load_study_design(path).seed == 7


def _with_variant(**variant: object) -> dict:
    """VALID plus `sex_variant`, the `sex` experiment trained with the given mitigation fields."""
    mapping = copy.deepcopy(VALID)
    mapping["experiments"]["sex_variant"] = {**VALID["experiments"]["sex"], **variant}
    return mapping


@pytest.mark.parametrize(
    ("variant", "strategy", "step"),
    [
        ({"mitigation": "oversampling", "varies": "sex"}, "oversampling", 0.01),
        ({"mitigation": "reweighting"}, "reweighting", 0.01),
        ({"mitigation": "group_dro", "group_dro_step": 0.05, "varies": "sex"}, "group_dro", 0.05),
        ({"mitigation": {"strategy": "group_dro", "group_dro_step": 1}}, "group_dro", 1),
        ({"mitigation": {"strategy": "protected_models"}}, "protected_models", 0.01),
        ({"mitigation": "cropping"}, "cropping", 10.0),
        ({"mitigation": "per_sample_loss", "varies": "sex"}, "per_sample_loss", 0.01),
        ({"mitigation": "cropping", "crop_margin_mm": 4}, "cropping", 4),
        ({"mitigation": {"strategy": "cropping", "crop_margin_mm": 0}}, "cropping", 0),
    ],
)
def test_a_training_variant_parses(variant: dict, strategy: str, step: float) -> None:
    design = parse_study_design(_with_variant(**variant))
    experiment = design.experiment("sex_variant")
    mitigation = experiment.mitigation
    setting = mitigation.crop_margin_mm if strategy == "cropping" else mitigation.group_dro_step
    assert (mitigation.strategy, setting) == (strategy, step)
    assert experiment.varies == variant.get("varies")
    assert design.experiment("sex").mitigation.strategy == "none"
    assert experiment.groups == design.experiment("sex").groups


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ({"mitigation": "undersampling"}, "'mitigation' must be one of none, oversampling"),
        ({"mitigation": True}, "field 'mitigation' must be a non-empty string"),
        ({"mitigation": {"strategy": "group_dro", "step": 0.1}}, r"unknown key\(s\) \['step'\]"),
        ({"mitigation": {"group_dro_step": 0.1}}, "missing required field 'strategy'"),
        ({"mitigation": "group_dro", "group_dro_step": 0}, "'group_dro_step' must be a positive"),
        ({"mitigation": "group_dro", "group_dro_step": "x"}, "'group_dro_step' must be a positive"),
        ({"mitigation": "oversampling", "group_dro_step": 0.1}, "to mitigation 'group_dro' only"),
        ({"mitigation": "group_dro", "crop_margin_mm": 5}, "to mitigation 'cropping' only"),
        ({"mitigation": "cropping", "crop_margin_mm": -1}, "'crop_margin_mm' must be a number >="),
        (
            {"mitigation": {"strategy": "cropping", "crop_margin_mm": 1}, "crop_margin_mm": 2},
            "'crop_margin_mm' is given twice",
        ),
        (
            {"mitigation": {"strategy": "group_dro", "group_dro_step": 0.1}, "group_dro_step": 0.2},
            "'group_dro_step' is given twice",
        ),
        ({"mitigaton": "oversampling"}, r"unknown field\(s\) \['mitigaton'\]"),
        ({"mitigation": "oversampling", "varies": "race"}, "'varies' names 'race', which is not"),
        (
            {"mitigation": "oversampling", "varies": "sex_variant"},
            "'varies' names 'sex_variant', which is not another",
        ),
        ({"varies": "sex"}, "'sex' already trains with mitigation 'none'"),
        (
            {"mitigation": "reweighting", "varies": "sex", "groups": ["male", "female"]},
            r"compares other groups \(differs in groups\)",
        ),
        (
            {"mitigation": "reweighting", "varies": "sex", "held_values": ["asian", "white"]},
            r"\(differs in held_values\)",
        ),
    ],
)
def test_a_bad_training_variant_is_refused_naming_file_and_experiment(
    variant: dict, message: str
) -> None:
    with pytest.raises(StudyDesignError, match=message) as error:
        parse_study_design(_with_variant(**variant), source="study.yaml")
    assert str(error.value).startswith("study.yaml: experiment 'sex_variant'")


def test_a_variant_of_a_variant_must_change_the_mitigation() -> None:
    mapping = _with_variant(mitigation="oversampling", varies="sex")
    mapping["experiments"]["sex_dro"] = {
        **VALID["experiments"]["sex"],
        "mitigation": "group_dro",
        "varies": "sex_variant",
    }
    assert parse_study_design(mapping).experiment("sex_dro").varies == "sex_variant"
    mapping["experiments"]["sex_dro"]["mitigation"] = "oversampling"
    with pytest.raises(StudyDesignError, match="'sex_variant' already trains with mitigation"):
        parse_study_design(mapping)


def test_a_misspelt_strategy_fails_at_load_naming_the_file(tmp_path: Path) -> None:
    study = yaml.safe_load(STUDY_YAML.read_text())
    study["experiments"]["race_black_dro"] = {
        **study["experiments"]["race_black"],
        "mitigation": "group-dro",
        "varies": "race_black",
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    with pytest.raises(StudyDesignError) as error:
        load_study_design(path)
    for named in (str(path), "experiment 'race_black_dro'", "'group-dro'"):
        assert named in str(error.value)


def test_only_a_mitigation_enters_the_training_fingerprint() -> None:
    design = parse_study_design(
        _with_variant(mitigation="group_dro", group_dro_step=0.05, varies="sex")
    )
    plain, dro = (design.experiment(name).mitigation for name in ("sex", "sex_variant"))
    assert plain.fingerprint() == ""
    assert dro.fingerprint() not in ("", replace(dro, group_dro_step=0.01).fingerprint())
    assert replace(dro, strategy="oversampling").fingerprint() not in ("", dro.fingerprint())


def test_a_strategys_fingerprint_holds_its_own_setting_only() -> None:
    """Stamps of folds trained before cropping existed stay put (values from that code)."""
    assert Mitigation("oversampling").fingerprint() == "8a26c267c6b5619c"
    assert Mitigation("group_dro").fingerprint() == "9533e319c7e35dfa"
    assert Mitigation("group_dro", crop_margin_mm=3).fingerprint() == "9533e319c7e35dfa"
    cropping = Mitigation("cropping")
    assert cropping.fingerprint() != Mitigation("cropping", crop_margin_mm=5).fingerprint()
    assert cropping.fingerprint() == Mitigation("cropping", group_dro_step=1).fingerprint()
    assert Mitigation().fingerprint() == ""


def test_the_loss_control_design_pairs_race_black_with_the_control_at_25() -> None:
    design = load_study_design(STUDY_YAML.parents[1] / "docs" / "study_loss_control.yaml")
    main = load_study_design(STUDY_YAML)
    assert design.ratios == (25,) and design.seed == main.seed
    baseline, control = design.experiments
    assert baseline == main.experiment("race_black")
    assert (control.mitigation.strategy, control.varies) == ("per_sample_loss", "race_black")
    for name in ("quick", "paper"):
        assert design.profile(name) == main.profile(name)


def test_group_dro_may_pair_with_balanced_sampling() -> None:
    """Sagawa et al.'s pairing is an option of group_dro only; off, Group DRO's stamps stay put."""
    for variant in (
        {"mitigation": {"strategy": "group_dro", "balanced_sampling": True}},
        {"mitigation": "group_dro", "balanced_sampling": True},
    ):
        mitigation = parse_study_design(_with_variant(**variant)).experiment("sex_variant")
        assert mitigation.mitigation == Mitigation("group_dro", balanced_sampling=True)
    paired = Mitigation("group_dro", balanced_sampling=True)
    assert paired.fingerprint() not in ("", Mitigation("group_dro").fingerprint())
    assert Mitigation("group_dro", balanced_sampling=False).fingerprint() == "9533e319c7e35dfa"
    for variant, message in (
        ({"mitigation": "oversampling", "balanced_sampling": True}, "to mitigation 'group_dro'"),
        ({"mitigation": "group_dro", "balanced_sampling": "yes"}, "must be true or false"),
    ):
        with pytest.raises(StudyDesignError, match=message):
            parse_study_design(_with_variant(**variant))
