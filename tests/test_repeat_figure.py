"""Repeated draws in figures: `repeat_figure` on planted `repeat_summary` tables (one draw and
three) and the report's "Repeated draws" section with it (no training)."""

import io
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from PIL import Image

from cmrbias_dagster.assets import analysis, beyond_the_paper, figures
from cmrbias_dagster.assets import report as report_assets
from cmrbias_dagster.lib.analysis import repeats
from cmrbias_dagster.lib.design.study import StudyDesign, parse_study_design
from cmrbias_dagster.lib.plots import figure_png, repeat_figure
from cmrbias_dagster.resources import StudyResource
from tests.test_repeats import RACE_BLACK, design_mapping, planted_scores, summarise
from tests.test_report_outline import exported_repeats_section


def planted(gaps: tuple[float, ...]) -> tuple[StudyDesign, pl.DataFrame]:
    """A design of sex and race_black drawn len(gaps) times, and planted overall DSC with repeat
    r's gap gaps[r - 1] in both experiments, at 0 and 50 %."""
    design = parse_study_design(design_mapping(len(gaps), race_black=RACE_BLACK))
    by_name = {experiment.name: gaps[experiment.repeat - 1] for experiment in design.experiments}
    return design, planted_scores(design, by_name)


def error_bars(figure: Figure) -> list[ErrorbarContainer]:
    return [c for axis in figure.axes for c in axis.containers if c.has_yerr]


def verdict_marks(figure: Figure) -> list[str]:
    return [text.get_text() for axis in figure.axes for text in axis.texts]


def test_three_draws_show_their_range_and_verdicts() -> None:
    design, scores = planted((0.04, 0.045, 0.05))
    figure = repeat_figure(summarise(scores, design), design.repeats)
    shown = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in shown] == [
        "race_black: black vs white",
        "sex: female vs male",
    ]
    bars = error_bars(figure)
    assert len(bars) == 4  # two groups per panel
    # race_black's first group: 0.82, 0.8225, 0.825 over the draws -> bars 0.82 to 0.825.
    segments = bars[0].lines[2][0].get_segments()
    assert [tuple(segment[:, 1]) for segment in segments] == [pytest.approx((0.82, 0.825))] * 2
    assert verdict_marks(figure) == ["established"] * 4
    assert "Median over 3 draws" in figure.get_suptitle()
    png = figure_png(figure)
    assert Image.open(io.BytesIO(png)).size == (840, 340)


def test_one_draw_renders_without_bars_and_says_so() -> None:
    design, scores = planted((0.04,))
    figure = repeat_figure(summarise(scores, design), design.repeats)
    assert error_bars(figure) == [] and verdict_marks(figure) == []
    assert sum(len(axis.containers) for axis in figure.axes) == 4
    assert "One draw per experiment" in figure.get_suptitle()
    assert Image.open(io.BytesIO(figure_png(figure))).size == (840, 340)


def test_a_row_of_panels_holds_three_experiments_and_hides_the_rest() -> None:
    design, scores = planted((0.04, 0.05))
    summary = summarise(scores, design)
    copies = [summary.with_columns(experiment=pl.lit(f"e{i}")) for i in range(4)]
    figure = repeat_figure(pl.concat(copies), design.repeats)
    assert len(figure.axes) == 6
    assert [axis.get_visible() for axis in figure.axes] == [True] * 4 + [False] * 2


def test_the_asset_draws_the_figure_and_the_report_section_embeds_it(tmp_path: Path) -> None:
    design_file = tmp_path / "study.yaml"
    design_file.write_text(yaml.safe_dump(design_mapping(3, race_black=RACE_BLACK)))
    study = StudyResource(study_file=str(design_file), work_dir=str(tmp_path / "work"))
    gaps = {"race_black": 0.04, "race_black_r2": 0.045, "race_black_r3": 0.05}
    scores = planted_scores(study.design(), gaps)

    @dg.asset(name="subject_scores")
    def subject_scores() -> pl.DataFrame:
        return scores

    result = dg.materialize(
        [
            subject_scores,
            analysis.gap_verdicts,
            beyond_the_paper.repeat_summary,
            figures.repeat_figure,
        ],
        resources={"study": study},
    )
    metadata = result.asset_materializations_for_node("repeat_figure")[0].metadata
    png = Path(metadata["repeats_path"].value).read_bytes()
    assert png.startswith(b"\x89PNG")
    (section,) = exported_repeats_section(study)
    assert section.figures == [("repeats", png)]
    assert "repeat_figure" in report_assets.FILE_ASSETS


def test_nothing_evaluated_draws_nothing(tmp_path: Path) -> None:
    @dg.asset(name="repeat_summary")
    def empty() -> pl.DataFrame:
        return pl.DataFrame(schema=repeats.SCHEMA)

    study = StudyResource(work_dir=str(tmp_path / "work"))
    result = dg.materialize([empty, figures.repeat_figure], resources={"study": study})
    metadata = result.asset_materializations_for_node("repeat_figure")[0].metadata
    assert "nothing to draw" in metadata["note"].value
    assert not study.figure_file("repeats").exists()
