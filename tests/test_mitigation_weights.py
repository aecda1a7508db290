"""The numbers the mitigations train with: pure functions on case ids and groups."""

import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.nnunet.mitigation import apply_mitigation, case_groups, mitigation_stamp
from cmrbias_dagster.lib.nnunet.mitigation.group_weights import (
    UnknownCaseError,
    balanced_sampling_probabilities,
    dro_update,
    inverse_frequency_weights,
    uniform_group_weights,
)
from cmrbias_dagster.lib.nnunet.mitigation.routing import (
    MissingGroupModelError,
    route_to_group_models,
)

# A 25/75 training fold: 5 black and 15 white subjects, two phases each.
SPLIT = pl.DataFrame(
    {
        "subject_id": [f"S{i:02d}" for i in range(20)],
        "group": ["black"] * 5 + ["white"] * 15,
        "held": ["female", "male"] * 10,
    }
)
GROUPS = case_groups(SPLIT)
CASES = sorted(GROUPS)


def test_case_groups_put_both_phases_of_a_subject_in_its_group() -> None:
    assert len(GROUPS) == 40
    assert GROUPS["S00_ED"] == GROUPS["S00_ES"] == "black"
    assert GROUPS["S19_ES"] == "white"
    with pytest.raises(ValueError, match=r"lacks columns \['group'\]"):
        case_groups(SPLIT.drop("group"))


def test_balanced_sampling_draws_each_group_equally_often_at_25_75() -> None:
    probabilities = balanced_sampling_probabilities(CASES, GROUPS)
    draws = np.random.default_rng(0).choice(CASES, 40_000, p=probabilities)
    black = np.mean([GROUPS[case] == "black" for case in draws])
    assert abs(black - 0.5) < 0.01
    uniform = np.random.default_rng(0).choice(CASES, 40_000)
    assert abs(np.mean([GROUPS[case] == "black" for case in uniform]) - 0.25) < 0.01
    # Within a group, cases stay equally likely.
    assert probabilities[CASES.index("S00_ED")] == pytest.approx(1 / 20)
    assert probabilities[CASES.index("S19_ED")] == pytest.approx(1 / 60)


def test_a_group_without_cases_is_skipped() -> None:
    white = [case for case in CASES if GROUPS[case] == "white"]
    assert balanced_sampling_probabilities(white, GROUPS) == pytest.approx([1 / 30] * 30)
    assert list(inverse_frequency_weights(white, GROUPS).values()) == pytest.approx([1.0] * 30)


def test_a_case_without_a_group_is_named() -> None:
    with pytest.raises(UnknownCaseError, match="S99_ED"):
        balanced_sampling_probabilities([*CASES, "S99_ED"], GROUPS)


def test_loss_weights_are_inverse_group_frequencies_with_mean_one() -> None:
    weights = inverse_frequency_weights(CASES, GROUPS)
    assert weights["S00_ED"] == pytest.approx(2.0)  # 1 / (2 x 0.25)
    assert weights["S10_ES"] == pytest.approx(2 / 3)  # 1 / (2 x 0.75)
    assert np.mean(list(weights.values())) == pytest.approx(1.0)
    by_group = {g: sum(w for c, w in weights.items() if GROUPS[c] == g) for g in ("black", "white")}
    assert by_group["black"] == pytest.approx(by_group["white"])


def test_dro_weights_move_toward_the_group_with_the_higher_loss() -> None:
    weights = uniform_group_weights(["black", "white", "black"])
    assert weights == {"black": 0.5, "white": 0.5}
    for _ in range(50):
        weights = dro_update(weights, {"black": -0.4, "white": -0.7}, step=0.1)
        assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["black"] > 0.8
    # Exactly Sagawa's update when every group is in the batch: q exp(step loss), normalised.
    one = dro_update({"a": 0.5, "b": 0.5}, {"a": 1.0, "b": 0.0}, step=1.0)
    assert one["a"] == pytest.approx(np.e / (np.e + 1))


def test_a_group_absent_from_the_batch_keeps_its_weight() -> None:
    weights = {"a": 0.2, "b": 0.3, "c": 0.5}
    updated = dro_update(weights, {"a": -0.9, "b": -0.1}, step=1.0)
    assert updated["c"] == 0.5 and updated["a"] + updated["b"] == pytest.approx(0.5)
    assert updated["b"] > 0.3 > 0.2 > updated["a"]
    with pytest.raises(ValueError, match=r"groups \['d'\]"):
        dro_update(weights, {"d": 1.0}, step=1.0)


def test_the_stamp_changes_with_strategy_settings_and_grouping_only_when_mitigated() -> None:
    by_sex = case_groups(SPLIT.with_columns(group=pl.col("held")))
    oversampling, dro = Mitigation("oversampling"), Mitigation("group_dro", 0.01)
    assert mitigation_stamp(Mitigation(), GROUPS) == mitigation_stamp(Mitigation(), by_sex) == ""
    stamps = {
        mitigation_stamp(oversampling, GROUPS),
        mitigation_stamp(oversampling, by_sex),
        mitigation_stamp(dro, GROUPS),
        mitigation_stamp(Mitigation("group_dro", 0.02), GROUPS),
    }
    assert len(stamps) == 4 and "" not in stamps
    assert mitigation_stamp(dro, dict(reversed(GROUPS.items()))) == mitigation_stamp(dro, GROUPS)


def test_a_protected_model_trains_on_one_groups_cases() -> None:
    with pytest.raises(ValueError, match="one group's cases; the mapping holds groups"):
        apply_mitigation(None, Mitigation("protected_models"), GROUPS)  # type: ignore[arg-type]
    apply_mitigation(None, Mitigation(), GROUPS)  # type: ignore[arg-type]  # none: untouched


def test_each_test_subject_goes_to_its_groups_model() -> None:
    subjects = {"T1": "black", "T2": "white", "T3": "black"}
    models = {"black": "model_black", "white": "model_white"}
    assert route_to_group_models(subjects, models) == {
        "T1": "model_black",
        "T2": "model_white",
        "T3": "model_black",
    }
    only_white = {"white": "model_white"}
    with pytest.raises(
        MissingGroupModelError, match=r"\['black'\] of test subject\(s\) \['T1', 'T3'\]"
    ):
        route_to_group_models(subjects, only_white)
    routed = route_to_group_models(subjects, only_white, fallback="model_white")
    assert set(routed.values()) == {"model_white"}
