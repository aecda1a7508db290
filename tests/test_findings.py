"""The findings and the headline table speak the verdict vocabulary: a gap or trend is
established only on its two-level verdict, with one draw every verdict says so, and a passed
convergence check is called a plateau, not proof of enough training (no training)."""

import polars as pl

from cmrbias_dagster.lib.analysis import gaps, ratio_dependence
from cmrbias_dagster.lib.analysis.findings import headline_table, study_findings
from cmrbias_dagster.lib.analysis.two_level import ONE_DRAW
from cmrbias_dagster.lib.design.study import parse_study_design
from tests.test_repeats import RACE_BLACK, design_mapping, planted_scores


def tables(draws: tuple[float, ...]) -> tuple[pl.DataFrame, pl.DataFrame, object]:
    """gap_verdicts and ratio_dependence of race_black (and sex, not evaluated), repeat r with
    the planted gap draws[r - 1] at 0 and 50 %."""
    design = parse_study_design(design_mapping(len(draws), race_black=RACE_BLACK))
    names = ["race_black", *(f"race_black_r{r}" for r in range(2, len(draws) + 1))]
    scores = planted_scores(design, dict(zip(names, draws, strict=True)))
    margin = design.equivalence_margin
    return (
        gaps.gap_table(scores, design, margin),
        ratio_dependence.ratio_dependence_table(scores, design, margin),
        design,
    )


def bullet(bullets: list[str], experiment: str) -> str:
    return next(b for b in bullets if b.startswith(f"{experiment}:"))


def test_a_gap_every_draw_agrees_on_is_established_with_its_interval() -> None:
    verdicts, trend, design = tables((0.04, 0.045, 0.05))
    race = bullet(study_findings(verdicts, design, trend), "race_black")
    assert race.startswith(f"race_black: black median DSC {0.8225:.3f} at 0 % black in training")
    assert "Gap established at 0 % (+4.5 [" in race and "50 % (+4.5 [" in race
    assert "(3 training draws)" in race and "not established" not in race.split("Share")[0]
    assert "sex: not evaluated yet." in study_findings(verdicts, design, trend)


def test_a_gap_that_flips_between_draws_is_not_established() -> None:
    verdicts, trend, design = tables((0.04, -0.04, 0.05))
    race = bullet(study_findings(verdicts, design, trend), "race_black")
    assert "Gap established at no ratio; not established at 0 % (+1.7 [" in race


def test_one_draw_labels_the_verdicts_and_says_so_once() -> None:
    verdicts, trend, design = tables((0.04,))
    bullets = study_findings(verdicts, design, trend)
    assert all(ONE_DRAW in v for v in verdicts["verdict"])
    assert sum(ONE_DRAW in b for b in bullets) == 1 and ONE_DRAW in bullets[-1]


def test_the_ratios_are_grouped_by_their_verdict() -> None:
    verdicts, trend, design = tables((0.04, 0.045, 0.05))
    said = ["not established", "equivalent within ±1 points"]
    relabelled = verdicts.with_columns(
        verdict=pl.when(pl.col("ratio") == 0).then(pl.lit(said[0])).otherwise(pl.lit(said[1]))
    )
    race = bullet(study_findings(relabelled, design, trend), "race_black")
    assert "Gap established at no ratio; equivalent within ±1 points at 50 % (+4.5 [" in race
    assert "]); not established at 0 % (+4.5 [" in race


def test_convergence_pools_an_experiments_repeats() -> None:
    verdicts, trend, design = tables((0.04, 0.045))
    records = pl.DataFrame(
        {
            "experiment": ["race_black", "race_black_r2", "sex"],
            "ratio": [0, 0, 0],
            "fold": [0, 0, 0],
            "passed": [True, False, False],
        }
    )
    race = bullet(study_findings(verdicts, design, trend, convergence=records), "race_black")
    assert "1 of 2 models' curves had not reached a plateau (race_black_r2 0 % fold 0)" in race


def test_the_share_sentence_reads_the_trend() -> None:
    verdicts, trend, design = tables((0.04, 0.045, 0.05))
    race = bullet(study_findings(verdicts, design, trend), "race_black")
    row = trend.filter(pl.col("class") == "overall").row(0, named=True)
    assert row["trend"] in {"equivalent", "no share dependence detected"}
    assert f"gap slope {100 * row['estimate']:+.1f} points from 0 to 100 % share" in race


def test_convergence_is_a_plateau_not_proof() -> None:
    verdicts, trend, design = tables((0.04,))
    records = pl.DataFrame(
        {
            "experiment": ["race_black"] * 2,
            "ratio": [0, 50],
            "fold": [0, 0],
            "passed": [True, False],
        }
    )
    race = bullet(study_findings(verdicts, design, trend, convergence=records), "race_black")
    assert "1 of 2 models' curves had not reached a plateau (race_black 50 % fold 0)" in race
    passed = records.with_columns(passed=pl.lit(True))
    race = bullet(study_findings(verdicts, design, trend, convergence=passed), "race_black")
    assert "All 2 models' curves reached a plateau under their schedule." in race


def test_the_headline_table_has_medians_gaps_and_the_trend() -> None:
    verdicts, trend, _ = tables((0.04, 0.045, 0.05))
    table = headline_table(verdicts, trend)
    assert table.columns == ["experiment", "row", "0 %", "50 %", "share dependence"]
    assert table["row"].to_list() == ["black", "white", "gap (points) [95 % CI] verdict"]
    assert table["0 %"][0] == f"{0.8225:.3f}" and table["0 %"][2].startswith("+4.5 [")
    assert table["0 %"][2].endswith("] established")
    assert table["share dependence"][2] != "" and table["experiment"][0] == "race_black"
    assert table["0 %"][1] == f"{0.7775:.3f}"
