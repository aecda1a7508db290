"""The two-level verdicts (lib/analysis/two_level.py, contrasts.py) are calibrated: on simulated
studies with a known truth they call noise a bias at most at the test's level, find a planted gap,
trend or strategy effect of a few times the model noise, and honour strata, sign and Holm."""

import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.lib.analysis import contrasts, ratio_dependence, strategy_effects, two_level
from cmrbias_dagster.lib.analysis.simulated_studies import NoiseModel, simulated_cube
from cmrbias_dagster.lib.design.experiment import Experiment
from cmrbias_dagster.lib.design.mitigation import Mitigation
from cmrbias_dagster.lib.design.study import StudyDesign, repeat_experiments

NOISE = NoiseModel()  # model noise 0.3 DSC points per repeat and group
MARGIN = 0.01


def established_share(repeats: int, gap: float, studies: int, seed: int = 7) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for study in range(studies):
        cube = simulated_cube(rng, NOISE, repeats, gap=gap)
        estimate = contrasts.median_gap(cube, 0, seed=study, n_resamples=400)
        hits += two_level.is_established(two_level.verdict(estimate, estimate.p_value, MARGIN))
    return hits / studies


def test_no_true_gap_is_established_at_most_at_the_level() -> None:
    studies = 300
    monte_carlo = 2 * np.sqrt(0.05 * 0.95 / studies)
    assert established_share(repeats=3, gap=0.0, studies=studies) <= 0.05 + monte_carlo


def test_a_gap_three_times_the_noise_is_established_at_five_repeats() -> None:
    assert established_share(repeats=5, gap=3 * NOISE.model, studies=120) >= 0.80


def test_one_draw_cannot_see_training_noise_and_says_so() -> None:
    rng = np.random.default_rng(3)
    estimate = contrasts.median_gap(simulated_cube(rng, NOISE, 1), 0, seed=1, n_resamples=400)
    said = two_level.verdict(estimate, estimate.p_value, MARGIN)
    assert said.endswith(f"({two_level.ONE_DRAW})") and estimate.repeats == 1


def test_the_model_part_widens_the_interval_beyond_the_subjects() -> None:
    """Repeats that disagree (model noise) give a wider interval than the subject part alone, and
    repeats that agree exactly add nothing to it."""
    subject_boot = np.random.default_rng(0).normal(0.0, 0.002, (500, 1))
    resampled = np.repeat(subject_boot, 3, axis=1)
    agreeing = two_level.combine([0.01, 0.01, 0.01], resampled, subject_df=46)
    disagreeing = two_level.combine([0.0, 0.01, 0.02], resampled, subject_df=46)
    assert agreeing.se == pytest.approx(float(np.std(subject_boot, ddof=1)), rel=1e-6)
    assert disagreeing.se == pytest.approx(np.sqrt(agreeing.se**2 + 0.01**2 / 3), rel=1e-6)
    assert disagreeing.df < agreeing.df


def test_equivalence_needs_the_interval_inside_the_margin() -> None:
    narrow = two_level.TwoLevelEstimate(0.001, 0.001, 40, -0.001, 0.003, 0.3, 3)
    wide = two_level.TwoLevelEstimate(0.001, 0.01, 40, -0.019, 0.021, 0.9, 3)
    assert two_level.verdict(narrow, 1.0, MARGIN) == "equivalent within ±1 points"
    assert two_level.verdict(wide, 1.0, MARGIN) == two_level.NOT_ESTABLISHED


# Through the public table functions: scores tables built from simulated cubes.
def design_of(*experiments: Experiment, repeats: int = 1) -> StudyDesign:
    expanded = repeat_experiments(experiments, repeats)
    return StudyDesign(
        seed=5, ratios=(0, 50, 100), experiments=expanded, profiles=(), repeats=repeats
    )


def scores_of(cube: contrasts.ScoreCube, experiment: Experiment, names: list[str]) -> pl.DataFrame:
    rows = []
    for k, ratio in enumerate(cube.ratios):
        for r, name in enumerate(names):
            for j, subject in enumerate(cube.subject_ids):
                group = experiment.groups[0] if cube.first[j] else experiment.groups[1]
                rows.append(
                    {
                        "experiment": name,
                        "ratio": ratio,
                        "subject_id": subject,
                        "group": group,
                        "held": str(cube.held[j]),
                        "class": "overall",
                        "dsc": float(cube.dsc[k, r, j]),
                    }
                )
    return pl.DataFrame(rows)


RACE = Experiment("race_black", "race", ("black", "white"), "sex", ("f", "m"))
SEX = Experiment("sex", "sex", ("female", "male"), "race", ("f", "m"))


def trend_row(cube: contrasts.ScoreCube, experiment: Experiment = RACE) -> dict:
    design = design_of(experiment, repeats=cube.dsc.shape[1])
    names = [e.name for e in design.experiments]
    table = ratio_dependence.ratio_dependence_table(
        scores_of(cube, experiment, names), design, MARGIN
    )
    return table.row(0, named=True)


def test_a_planted_share_trend_is_share_dependent_and_a_constant_offset_is_not() -> None:
    rng = np.random.default_rng(11)
    ratios = (0, 25, 50, 75, 100)
    trend = trend_row(simulated_cube(rng, NOISE, 3, ratios=ratios, gap_slope=0.03))
    offset = trend_row(simulated_cube(rng, NOISE, 3, gap=-0.02, ratios=ratios))
    assert (trend["trend"], trend["estimate"] > 0) == ("share dependent", True)
    assert offset["trend"] in {"no share dependence detected", "equivalent"}


def test_a_planted_reverse_trend_is_called_reverse() -> None:
    rng = np.random.default_rng(12)
    row = trend_row(simulated_cube(rng, NOISE, 3, ratios=(0, 25, 50, 75, 100), gap_slope=-0.03))
    assert row["trend"] == "reverse" and row["estimate"] < 0


def test_a_trend_of_the_held_attribute_is_not_read_as_the_groups() -> None:
    """Slopes that depend on the held value alone, with that value spread unevenly across the
    groups (three quarters of the first group, a quarter of the second): no dependence."""
    rng = np.random.default_rng(13)
    cube = simulated_cube(rng, NoiseModel(model=0.0005), 1, ratios=(0, 25, 50, 75, 100))
    n = cube.first.size // 2
    held = np.array(
        ["f"] * (3 * n // 4) + ["m"] * (n // 4) + ["f"] * (n // 4) + ["m"] * (3 * n // 4)
    )
    share = np.asarray(cube.ratios, dtype=float)[:, None, None] / 100.0
    dsc = cube.dsc + np.where(held == "f", 0.04, 0.0) * share
    uneven = contrasts.ScoreCube(cube.ratios, cube.subject_ids, cube.first, held, dsc)
    naive = dsc[..., cube.first].mean() - dsc[..., ~cube.first].mean()
    row = trend_row(uneven)
    assert naive != pytest.approx(0.0, abs=0.003)  # the groups' raw slopes do differ
    assert row["trend"] != "share dependent" and abs(row["estimate"]) < 0.005


def test_holm_runs_across_experiments_of_one_class() -> None:
    rng = np.random.default_rng(14)
    ratios = (0, 50, 100)
    race = simulated_cube(rng, NOISE, 1, ratios=ratios, gap_slope=0.02)
    sex = simulated_cube(rng, NOISE, 1, ratios=ratios, gap_slope=0.01)
    scores = pl.concat([scores_of(race, RACE, ["race_black"]), scores_of(sex, SEX, ["sex"])])
    table = ratio_dependence.ratio_dependence_table(scores, design_of(RACE, SEX), MARGIN)
    assert table.height == 2
    assert table["p_holm"].to_list() == pytest.approx(two_level.holm(table["p_value"].to_list()))
    assert (table["p_holm"] > table["p_value"]).any()


VARIANT = Experiment(
    "race_black_over",
    "race",
    ("black", "white"),
    "sex",
    ("f", "m"),
    mitigation=Mitigation(strategy="oversampling"),
    varies="race_black",
)


def strategy_scores(effect: float, seed: int, repeats: int = 3) -> tuple[pl.DataFrame, StudyDesign]:
    """A baseline with a 3-point gap (black lower) and a variant that raises black subjects'
    DSC by `effect`, on the same test subjects, `repeats` draws of each."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0.0, NOISE.subject, 2 * NOISE.per_group)  # one test set for both
    baseline = simulated_cube(rng, NOISE, repeats, gap=-0.03, ratios=(25,), difficulty=difficulty)
    variant = simulated_cube(
        rng, NOISE, repeats, gap=-0.03 + effect, ratios=(25,), difficulty=difficulty
    )
    design = design_of(RACE, VARIANT, repeats=repeats)
    names = {e.base: [] for e in design.experiments}
    for experiment in design.experiments:
        names[experiment.base].append(experiment.name)
    scores = pl.concat(
        [
            scores_of(baseline, RACE, names["race_black"]),
            scores_of(variant, VARIANT, names["race_black_over"]),
        ]
    )
    return scores, design


def gap_reading(effect: float, seed: int) -> str:
    scores, design = strategy_scores(effect, seed)
    table = strategy_effects.strategy_effect_table(scores, design, MARGIN)
    return table.filter(pl.col("effect") == "gap")["reading"].item()


def test_a_strategy_effect_smaller_than_the_noise_is_not_called_a_narrowing() -> None:
    readings = [gap_reading(effect=NOISE.model / 3, seed=seed) for seed in range(40)]
    assert readings.count("narrows the gap") <= 4


def test_a_strategy_that_closes_the_gap_is_called_a_narrowing() -> None:
    readings = [gap_reading(effect=0.03, seed=seed) for seed in range(10)]
    assert readings.count("narrows the gap") >= 7
