"""Whether the between-group gap moves with the training share, on planted subject scores."""

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from cmrbias_dagster.assets.analysis import ratio_dependence_table as table_asset
from cmrbias_dagster.lib.analysis.contrasts import score_cube, subject_slopes
from cmrbias_dagster.lib.analysis.ratio_dependence import (
    ratio_dependence_table,
    single_ratio_experiments,
)
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.resources import DuckDBPolarsTables, StudyResource

ORDER = {"race_black": ("black", "white"), "sex": ("female", "male")}
RATIOS = (0, 25, 50, 75, 100)
DESIGN = load_study_design()
MARGIN = DESIGN.equivalence_margin


def planted_scores(
    trend: float, offset: float, ratios=RATIOS, per_group: int = 12, seed: int = 0
) -> pl.DataFrame:
    """Overall DSC of `race_black` subjects: black subjects gain `trend` from 0 % to 100 % share
    and sit `offset` below white ones; each subject has its own difficulty, plus noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for group in ORDER["race_black"]:
        for s in range(per_group):
            held = ("female", "male")[s % 2]
            base = 0.9 + rng.normal(0, 0.02) - (offset if group == "black" else 0.0)
            for ratio in ratios:
                rise = trend * ratio / 100 if group == "black" else 0.0
                dsc = base + rise + rng.normal(0, 0.005)
                rows.append(("race_black", ratio, f"{group}_{s}", group, held, "overall", dsc))
    columns = ["experiment", "ratio", "subject_id", "group", "held", "class", "dsc"]
    return pl.DataFrame(rows, schema=columns, orient="row")


def test_slope_is_the_dsc_change_from_0_to_100_percent() -> None:
    cube = score_cube(planted_scores(0.05, 0.0, per_group=2), ["race_black"], "black", "overall")
    slopes = subject_slopes(cube)
    assert slopes.shape == (1, 4)
    assert slopes[0, cube.first] == pytest.approx([0.05, 0.05], abs=0.02)
    assert slopes[0, ~cube.first] == pytest.approx([0.0, 0.0], abs=0.02)


def test_a_gap_that_closes_with_the_share_is_share_dependent() -> None:
    row = ratio_dependence_table(planted_scores(0.04, 0.05), DESIGN, MARGIN).row(0, named=True)
    assert row["trend"] == "share dependent"
    assert row["verdict"] == "established (one training draw: training noise not included)"
    assert row["p_holm"] < 0.01 and 0 < row["ci_low"] < row["estimate"] < row["ci_high"]
    assert row["gap_low"] == pytest.approx(-0.05, abs=0.02)
    assert row["gap_high"] == pytest.approx(-0.01, abs=0.02)
    assert (row["n_ratios"], row["n_a"], row["n_b"], row["ratio_high"]) == (5, 12, 12, 100)


def test_a_constant_gap_is_not_a_trend() -> None:
    row = ratio_dependence_table(planted_scores(0.0, 0.05), DESIGN, MARGIN).row(0, named=True)
    assert row["trend"] == "equivalent" and row["verdict"].startswith("equivalent within ±1 points")
    assert -MARGIN < row["ci_low"] < 0 < row["ci_high"] < MARGIN and row["p_value"] > 0.05
    assert row["gap_low"] == pytest.approx(row["gap_high"], abs=0.01)
    assert row["gap_low"] < -0.03


def test_fewer_than_two_ratios_give_no_row() -> None:
    scores = pl.concat(
        [
            planted_scores(0.04, 0.05),
            planted_scores(0.0, 0.0, ratios=(50,)).with_columns(experiment=pl.lit("sex")),
        ]
    )
    table = ratio_dependence_table(scores, DESIGN, MARGIN)
    assert table["experiment"].to_list() == ["race_black"]
    assert single_ratio_experiments(scores) == ["sex"]
    assert ratio_dependence_table(scores.filter(pl.col("ratio") == 50), DESIGN, MARGIN).is_empty()


@dg.asset(name="subject_scores", group_name="analysis")
def planted_subject_scores() -> pl.DataFrame:
    return planted_scores(0.04, 0.05)


def test_asset_exports_the_table(tmp_path: Path) -> None:
    resources = {
        "study": StudyResource(work_dir=str(tmp_path)),
        "io_manager": DuckDBPolarsTables(database=str(tmp_path / "t.duckdb"), schema="cmrbias"),
    }
    result = dg.materialize([planted_subject_scores, table_asset], resources=resources)
    table = result.output_for_node("ratio_dependence_table")
    metadata = result.asset_materializations_for_node("ratio_dependence_table")[0].metadata
    assert table["trend"].to_list() == ["share dependent"]
    assert pl.read_csv(metadata["csv"].value).height == 1
    assert metadata["overall"].value.startswith(r"| experiment | class | group\_a |")
