"""Combined strategies (`mitigation: [cropping, oversampling]`) and FairSeg's fair error-bound
scaling in the design, their training stamps and weights, and where a fold trains them."""

import hashlib
import json
import math
import pickle
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from cmrbias_dagster.lib.design.mitigation import STRATEGIES, Mitigation
from cmrbias_dagster.lib.design.study import StudyDesignError, parse_study_design
from cmrbias_dagster.lib.design.study_file import DEFAULT_STUDY_FILE, load_study_design
from cmrbias_dagster.lib.nnunet.mitigation import case_groups, mitigation_stamp
from cmrbias_dagster.lib.nnunet.mitigation.group_weights import error_bound_weights
from tests.test_study_design import _with_variant

COMBINED = Mitigation(("cropping", "oversampling"))


def variant(**fields: object) -> Mitigation:
    """The mitigation of `sex_variant` (the sex experiment with these fields) as the design
    parses it."""
    return parse_study_design(_with_variant(**fields)).experiment("sex_variant").mitigation


@pytest.mark.parametrize(
    "fields",
    [
        {"mitigation": ["cropping", "oversampling"]},
        {"mitigation": ["oversampling", "cropping"]},
        {"mitigation": {"strategy": ["cropping", "oversampling"]}},
        {"mitigation": ["cropping", "oversampling"], "varies": "sex"},
    ],
)
def test_a_list_of_strategies_is_one_combination_whatever_its_order(fields: dict) -> None:
    mitigation = variant(**fields)
    assert mitigation == COMBINED
    assert mitigation.strategies == ("cropping", "oversampling")
    assert mitigation.label == "cropping + oversampling"
    assert mitigation.uses("cropping") and mitigation.uses("oversampling")
    assert not mitigation.uses("reweighting")


def test_a_combination_takes_each_of_its_strategies_settings_only() -> None:
    mitigation = variant(mitigation=["cropping", "group_dro"], crop_margin_mm=4, group_dro_step=1)
    assert (mitigation.crop_margin_mm, mitigation.group_dro_step) == (4, 1)
    block = {"strategy": ["cropping", "error_bound_scaling"], "error_bound_gamma": 2}
    assert variant(mitigation=block).error_bound_gamma == 2
    with pytest.raises(StudyDesignError, match="'group_dro_step' applies to mitigation 'group_d"):
        variant(mitigation=["cropping", "oversampling"], group_dro_step=1)


@pytest.mark.parametrize(
    ("strategies", "reason"),
    [
        (["none", "cropping"], "combines with nothing"),
        (["protected_models", "oversampling"], "one model per group"),
        (["protected_models", "cropping"], "one model per group"),
        (["reweighting", "group_dro"], "group_dro and reweighting each replace the batch's loss"),
        (["per_sample_loss", "reweighting"], "each replace the batch's loss"),
        (["error_bound_scaling", "group_dro"], "each replace the batch's loss"),
        (["oversampling", "reweighting"], "favour the small group a second time"),
        (["oversampling", "group_dro"], "`balanced_sampling: true`"),
        (["cropping", "cropping"], "lists a strategy twice"),
    ],
)
def test_a_combination_that_cannot_train_together_is_refused_naming_the_experiment(
    strategies: list[str], reason: str
) -> None:
    with pytest.raises(StudyDesignError) as error:
        variant(mitigation=strategies)
    assert "experiment 'sex_variant'" in str(error.value) and reason in str(error.value)


@pytest.mark.parametrize(
    "strategies",
    [
        ["cropping", "oversampling"],
        ["cropping", "reweighting"],
        ["cropping", "group_dro"],
        ["cropping", "error_bound_scaling"],
        ["oversampling", "error_bound_scaling"],
        ["cropping", "oversampling", "per_sample_loss"],
    ],
)
def test_combinations_that_compose_are_accepted(strategies: list[str]) -> None:
    assert variant(mitigation=strategies).strategies == tuple(sorted(strategies))


def test_unknown_strategies_in_a_list_are_refused() -> None:
    with pytest.raises(StudyDesignError, match="field 'mitigation' must be one of .* got 'crop'"):
        variant(mitigation=["crop", "oversampling"])
    with pytest.raises(
        StudyDesignError, match="non-empty string or list of strategies, got \\[\\]"
    ):
        variant(mitigation=[])


def fingerprint_before_combinations(mitigation: Mitigation) -> str:
    """A single strategy's fingerprint as the code computed it before combinations and FEBS."""
    settings = {"group_dro_step": "group_dro", "crop_margin_mm": "cropping"}
    settings["balanced_sampling"] = "group_dro"
    relevant = {"strategy": mitigation.strategy}
    relevant |= {k: getattr(mitigation, k) for k, s in settings.items() if s == mitigation.strategy}
    if not mitigation.balanced_sampling:
        relevant.pop("balanced_sampling", None)
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    "mitigation",
    [
        *(Mitigation(s) for s in STRATEGIES if s not in ("none", "error_bound_scaling")),
        Mitigation("group_dro", group_dro_step=0.05, balanced_sampling=True),
        Mitigation("cropping", crop_margin_mm=4),
        Mitigation(["cropping"]),  # a list of one is that strategy
    ],
    ids=str,
)
def test_single_strategies_keep_their_fingerprints(mitigation: Mitigation) -> None:
    """No fold trained before combinations existed is retrained."""
    assert mitigation.fingerprint() == fingerprint_before_combinations(mitigation)


def test_a_combination_has_a_training_stamp_of_its_own() -> None:
    groups = case_groups(pl.DataFrame({"subject_id": ["s1", "s2"], "group": ["black", "white"]}))
    singles = {Mitigation(s).fingerprint() for s in ("cropping", "oversampling")}
    assert COMBINED.fingerprint() not in {"", *singles}
    assert COMBINED.fingerprint() != replace(COMBINED, crop_margin_mm=5).fingerprint()
    assert COMBINED.fingerprint() == replace(COMBINED, group_dro_step=1).fingerprint()
    stamps = {mitigation_stamp(Mitigation(s), groups) for s in ("cropping", "oversampling")}
    assert mitigation_stamp(COMBINED, groups) not in stamps
    febs = Mitigation("error_bound_scaling")
    assert febs.fingerprint() != replace(febs, error_bound_gamma=2).fingerprint()


def test_error_bound_weights_follow_fairseg_on_hand_computed_errors() -> None:
    """w_g = tanh((min_h E_h / E_g) ** gamma): errors 0.2, 0.4, 0.8 give ratios 1, 1/2, 1/4."""
    errors = {"asian": 0.8, "black": 0.4, "white": 0.2}
    weights = error_bound_weights(errors, gamma=1.0)
    assert weights == pytest.approx(
        {"asian": 0.244919, "black": 0.462117, "white": 0.761594}, abs=1e-6
    )
    squared = error_bound_weights(errors, gamma=2.0)  # ratios squared: 1, 1/4, 1/16
    assert squared == pytest.approx(
        {"asian": 0.062419, "black": 0.244919, "white": 0.761594}, abs=1e-6
    )
    assert error_bound_weights({"white": 0.3}, 1.0) == {"white": pytest.approx(math.tanh(1))}
    assert error_bound_weights({"black": 0.0, "white": 0.5}, 1.0) == {
        "black": pytest.approx(math.tanh(1)),
        "white": 0.0,
    }
    with pytest.raises(ValueError, match="groups \\['black'\\] have a negative one"):
        error_bound_weights({"black": -0.1, "white": 0.5}, 1.0)


def test_a_combination_with_cropping_trains_its_cascade_with_the_combination(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The fold asset picks the cascade for cropping + oversampling; the cascade's localiser
    trains unmitigated (adopting the baseline's training) and its cropped model with the
    combination, whose trainer hooks then oversample (test_mitigation_training)."""
    from cmrbias_dagster.assets.training import fold_trainer
    from cmrbias_dagster.lib.nnunet import cropping_cascade
    from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment
    from cmrbias_dagster.lib.nnunet.mitigation.cropping import cropped_environment

    race = load_study_design(DEFAULT_STUDY_FILE).experiment("race_black")
    split = pl.DataFrame({"subject_id": ["s1", "s2"], "group": ["black", "white"]})
    trainer = fold_trainer(replace(race, mitigation=COMBINED), split)
    assert trainer.func is cropping_cascade.train_cropping_cascade
    assert trainer.keywords == {"mitigation": COMBINED, "case_groups": case_groups(split)}
    pickle.loads(pickle.dumps(trainer))

    calls = []
    monkeypatch.setattr(
        cropping_cascade, "train_fold", lambda env, *args: calls.append((env, args)) or env
    )
    env = NnunetEnvironment(tmp_path / "raw", tmp_path / "preprocessed", tmp_path / "results")
    settings = load_study_design(DEFAULT_STUDY_FILE).profile("tiny").training
    groups = case_groups(split)
    stages = cropping_cascade.train_cropping_cascade(
        env, "Dataset511_x", 0, settings, "cpu", None, COMBINED, groups
    )
    assert stages == {"localiser": env, "cropped": cropped_environment(env)}
    (localiser_env, localiser), (cropped_env, cropped) = calls
    assert localiser == ("Dataset511_x", 0, settings, "cpu", None)  # nnU-Net's own training
    assert cropped[-2:] == (COMBINED, groups)


def test_the_comparison_and_its_side_by_side_name_a_combination_readably() -> None:
    from cmrbias_dagster.lib.analysis import mitigation, result_tables
    from cmrbias_dagster.lib.design.experiment import Experiment
    from tests.test_mitigation_comparison import (
        BASELINE,
        PLANTED_LOSS,
        RACE_HELD,
        planted_metrics,
        study_design,
    )

    combined = Experiment(
        "race_black_cropped_oversampled", **RACE_HELD, mitigation=COMBINED, varies="race_black"
    )
    febs = Experiment(
        "race_black_febs",
        **RACE_HELD,
        mitigation=Mitigation("error_bound_scaling"),
        varies="race_black",
    )
    losses = {**PLANTED_LOSS, combined.name: 0.02, febs.name: 0.04}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tests.test_mitigation_comparison.PLANTED_LOSS", losses)
        scores = result_tables.subject_scores(planted_metrics((BASELINE, combined, febs)))
    table = mitigation.mitigation_comparison(scores, study_design(BASELINE, combined, febs))
    strategies = dict(table.select("experiment", "strategy").unique().iter_rows())
    assert strategies[combined.name] == "cropping + oversampling"
    assert strategies[febs.name] == "error_bound_scaling"
    wide = mitigation.side_by_side(table, "race_black")
    assert "race_black_cropped_oversampled (cropping + oversampling)" in wide.columns
