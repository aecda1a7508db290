"""Unit tests of the figure functions in cmrbias_dagster.lib.plots, on small synthetic tables."""

import io
import math
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure
from PIL import Image

from cmrbias_dagster.lib.plots import (
    QualitativeCase,
    clinical_differences_figure,
    cohort_distributions_figure,
    dsc_by_class_figure,
    dsc_by_ratio_figure,
    fairness_figure,
    figure_png,
    pick_best_median_worst,
    qualitative_figure,
)

GROUP_ORDER = {"sex": ["female", "male"], "race_black": ["black", "white"]}
RATIOS = (0, 25, 50, 75, 100)
CLASSES = ("overall", "LVBP", "LVM", "RVBP")
STARS = {
    ("sex", "overall"): "****",
    ("race_black", "overall"): "*",
    ("sex", "LVBP"): "**",
    ("race_black", "LVBP"): "**",
    ("sex", "LVM"): "ns",
    ("race_black", "LVM"): "ns",
    ("sex", "RVBP"): "***",
    ("race_black", "RVBP"): "***",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def subject_scores(seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for experiment, groups in GROUP_ORDER.items():
        for ratio in RATIOS:
            for index, group in enumerate(groups):
                for subject in range(6):
                    for name in CLASSES:
                        dsc = rng.normal(0.82 + 0.03 * index + 0.0005 * ratio, 0.04)
                        rows.append(
                            {
                                "experiment": experiment,
                                "ratio": ratio,
                                "subject_id": f"{group}{subject}",
                                "group": group,
                                "held": "test",
                                "class": name,
                                "dsc": float(np.clip(dsc, 0.0, 1.0)),
                            }
                        )
    return pl.DataFrame(rows)


def comparisons(missing: tuple[str, int] = ("race_black", 50)) -> pl.DataFrame:
    """Stars per (experiment, class), with the overall row of `missing` left out."""
    rows = [
        {
            "experiment": experiment,
            "ratio": ratio,
            "class": name,
            "p_value": 0.01,
            "p_holm": 0.04,
            "stars": STARS[experiment, name],
        }
        for experiment in GROUP_ORDER
        for ratio in RATIOS
        for name in CLASSES
        if (experiment, ratio, name) != (*missing, "overall")
    ]
    return pl.DataFrame(rows)


def clinical(seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    scores = subject_scores().filter(pl.col("class") == "overall")
    size = scores.height
    return scores.select("experiment", "ratio", "subject_id", "group").with_columns(
        lv_esv_ml_diff=rng.normal(2.0, 5.0, size),
        lv_ef_diff=rng.normal(0.0, 0.04, size),
        rv_esv_ml_diff=rng.normal(-1.0, 6.0, size),
        rv_ef_diff=rng.normal(0.01, 0.05, size),
    )


def fairness() -> pl.DataFrame:
    rows = [
        {
            "experiment": experiment,
            "ratio": ratio,
            "sd_of_group_means": 0.01 + ratio / 5000 * shift,
            "skewed_error_ratio": math.inf if ratio == 50 else 1.0 + ratio / 100 * shift,
            "es_dice": 0.85 - ratio / 10000 * shift,
            "parity_gap": 0.02 + ratio / 4000 * shift,
        }
        for shift, experiment in enumerate(GROUP_ORDER, start=1)
        for ratio in RATIOS
    ]
    return pl.DataFrame(rows)


def manifest(seed: int = 2) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    races = ["white"] * 20 + ["black"] * 12 + ["asian"]
    size = len(races)
    height = rng.normal(170.0, 9.0, size)
    weight = rng.normal(78.0, 12.0, size)
    bmi = weight / (height / 100) ** 2
    bmi[3] = np.nan
    return pl.DataFrame(
        {
            "subject_id": [f"s{i}" for i in range(size)],
            "sex": rng.choice(["female", "male"], size).tolist(),
            "race": races,
            "age": rng.integers(45, 80, size),
            "height_cm": height,
            "weight_kg": weight,
            "bmi": bmi,
        }
    )


def qualitative_cases(count: int = 2) -> list[QualitativeCase]:
    rng = np.random.default_rng(3)
    cases = []
    for index in range(count):
        image = rng.random((16, 12, 8))
        truth = np.zeros((16, 12, 8), dtype=np.uint8)
        truth[4:10, 3:8, 3:6] = 1
        prediction = np.roll(truth, 1, axis=0)
        cases.append(QualitativeCase(f"case {index}", image, truth, prediction))
    return cases


def texts(axis) -> list[str]:
    return [text.get_text() for text in axis.texts]


def legend_names(axis) -> list[str]:
    return [text.get_text() for text in axis.get_legend().get_texts()]


@pytest.mark.parametrize("experiments", [["sex"], ["sex", "race_black"]])
def test_dsc_by_ratio_has_one_panel_per_experiment(experiments: list[str]) -> None:
    order = {name: GROUP_ORDER[name] for name in experiments}
    figure = dsc_by_ratio_figure(subject_scores(), comparisons(), order)
    assert [axis.get_title() for axis in figure.axes] == experiments
    for axis, groups in zip(figure.axes, order.values(), strict=True):
        assert axis.get_ylabel() == "DSC"
        assert axis.get_xlabel() == f"% {groups[0]} in training"
        assert [tick.get_text() for tick in axis.get_xticklabels()] == [str(r) for r in RATIOS]
        assert legend_names(axis) == groups


def test_dsc_by_ratio_brackets_show_the_matching_stars_only() -> None:
    figure = dsc_by_ratio_figure(subject_scores(), comparisons(), GROUP_ORDER)
    sex, race = figure.axes
    assert texts(sex) == ["****"] * len(RATIOS)
    assert texts(race) == ["*"] * (len(RATIOS) - 1)
    assert "ns" not in texts(sex) + texts(race)


def test_dsc_by_ratio_brackets_sit_above_both_boxes() -> None:
    scores = subject_scores()
    figure = dsc_by_ratio_figure(scores, comparisons(), {"sex": GROUP_ORDER["sex"]})
    axis = figure.axes[0]
    overall = scores.filter((pl.col("experiment") == "sex") & (pl.col("class") == "overall"))
    for text in axis.texts:
        x, y = text.get_position()
        assert y > overall.filter(pl.col("ratio") == RATIOS[round(x)])["dsc"].max()
    assert axis.get_ylim()[1] > max(text.get_position()[1] for text in axis.texts)


def test_dsc_by_ratio_leaves_a_missing_group_empty_and_unbracketed() -> None:
    scores = subject_scores().filter(
        ~((pl.col("experiment") == "sex") & (pl.col("ratio") == 0) & (pl.col("group") == "male"))
    )
    figure = dsc_by_ratio_figure(scores, comparisons(), GROUP_ORDER)
    assert texts(figure.axes[0]) == ["****"] * (len(RATIOS) - 1)
    assert figure_png(figure, dpi=30).startswith(PNG_SIGNATURE)


def test_dsc_by_class_has_a_row_per_structure_and_its_stars() -> None:
    figure = dsc_by_class_figure(subject_scores(), comparisons(), GROUP_ORDER)
    axes = np.array(figure.axes).reshape(3, len(GROUP_ORDER))
    assert [axis.get_title() for axis in axes[0]] == list(GROUP_ORDER)
    for row, name in enumerate(("LVBP", "LVM", "RVBP")):
        for axis, experiment in zip(axes[row], GROUP_ORDER, strict=True):
            assert axis.get_ylabel() == f"{name} DSC"
            assert texts(axis) == [STARS[experiment, name]] * len(RATIOS)
    assert [legend_names(axis) for axis in axes[0]] == list(GROUP_ORDER.values())


def test_clinical_differences_rows_are_measures_with_a_zero_line() -> None:
    figure = clinical_differences_figure(clinical(), GROUP_ORDER)
    axes = np.array(figure.axes).reshape(4, len(GROUP_ORDER))
    assert [axis.get_title() for axis in axes[0]] == list(GROUP_ORDER)
    assert [axis.get_ylabel() for axis in axes[:, 0]] == [
        "LV ESV error (mL)",
        "LV EF error (%-points)",
        "RV ESV error (mL)",
        "RV EF error (%-points)",
    ]
    for axis in axes.flat:
        assert any(
            line.get_linestyle() == "--" and set(line.get_ydata()) == {0.0}
            for line in axis.get_lines()
        )
    assert max(abs(limit) for limit in axes[1, 0].get_ylim()) > 2.0


def test_fairness_has_a_panel_per_metric_and_a_line_per_experiment() -> None:
    figure = fairness_figure(fairness(), GROUP_ORDER)
    assert [axis.get_title() for axis in figure.axes] == [
        "SD of group mean DSC",
        "Skewed error ratio",
        "ES-Dice",
        "Parity gap (median DSC)",
    ]
    for axis in figure.axes:
        assert len(axis.get_lines()) == len(GROUP_ORDER)
        assert list(axis.get_xticks()) == list(RATIOS)
    names = [text.get_text() for text in figure.legends[0].get_texts()]
    assert names == ["sex (% female)", "race_black (% black)"]
    ser = figure.axes[1].get_lines()[0].get_ydata()
    assert np.isnan(ser[RATIOS.index(50)])


def test_cohort_distributions_show_each_measure_by_race_and_sex() -> None:
    figure = cohort_distributions_figure(manifest())
    titles = [axis.get_title() for axis in figure.axes]
    assert len(titles) == 8
    assert titles[0] == "Age (years) by race"
    assert titles[-1] == "BMI (kg/m²) by sex"
    ticks = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert ticks == ["asian\n(n=1)", "black\n(n=12)", "white\n(n=20)"]
    assert "(n=19)" in figure.axes[3].get_xticklabels()[2].get_text()


@pytest.mark.parametrize("count", [1, 3])
def test_qualitative_figure_shows_image_truth_prediction_per_case(count: int) -> None:
    cases = qualitative_cases(count)
    figure = qualitative_figure(cases)
    assert len(figure.axes) == count * 3
    assert [axis.get_title() for axis in figure.axes[:3]] == ["image", "truth", "prediction"]
    assert [figure.axes[3 * row].get_ylabel() for row in range(count)] == [
        case.title for case in cases
    ]
    image_axis, truth_axis, prediction_axis = figure.axes[:3]
    np.testing.assert_array_equal(image_axis.images[0].get_array(), cases[0].image[:, :, 4].T)
    np.testing.assert_array_equal(truth_axis.images[1].get_array(), cases[0].truth[:, :, 4].T)
    np.testing.assert_array_equal(
        prediction_axis.images[1].get_array(), cases[0].prediction[:, :, 4].T
    )
    assert image_axis.images[0].origin == "lower"


@pytest.mark.parametrize(
    "build",
    [
        lambda: dsc_by_ratio_figure(subject_scores(), comparisons(), GROUP_ORDER),
        lambda: dsc_by_class_figure(subject_scores(), comparisons(), GROUP_ORDER),
        lambda: clinical_differences_figure(clinical(), GROUP_ORDER),
        lambda: fairness_figure(fairness(), GROUP_ORDER),
        lambda: cohort_distributions_figure(manifest()),
        lambda: qualitative_figure(qualitative_cases()),
    ],
    ids=["dsc_by_ratio", "dsc_by_class", "clinical", "fairness", "cohort", "qualitative"],
)
def test_figure_png_is_a_png_of_the_figure_size(build: Callable[[], Figure]) -> None:
    figure = build()
    width, height = figure.get_size_inches() * 40
    png = figure_png(figure, dpi=40)
    assert png.startswith(PNG_SIGNATURE)
    decoded = Image.open(io.BytesIO(png))
    assert decoded.size == pytest.approx((width, height), abs=2)


def test_qualitative_figure_refuses_no_cases() -> None:
    with pytest.raises(ValueError, match="at least one panel"):
        qualitative_figure([])


def test_pick_best_median_worst_per_group() -> None:
    scores = pl.DataFrame(
        {
            "subject_id": ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"],
            "group": ["a", "a", "a", "a", "b", "b", "b", "b"],
            "dsc": [0.9, 0.7, 0.8, 0.6, 0.5, 0.95, 0.85, float("nan")],
        }
    )
    picked = pick_best_median_worst(scores)
    assert picked.select("group", "rank", "subject_id").rows() == [
        ("a", "best", "s1"),
        ("a", "median", "s2"),
        ("a", "worst", "s4"),
        ("b", "best", "s6"),
        ("b", "median", "s7"),
        ("b", "worst", "s5"),
    ]
    assert picked.columns == ["subject_id", "group", "dsc", "rank"]
