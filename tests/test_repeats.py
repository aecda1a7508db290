"""Repeated draws (`repeats` in the design): the expanded experiments and their seeds, the draws
they make, and `repeat_summary` on planted subject-level scores (no training)."""

import copy
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
import yaml

from cmrbias_dagster.assets import analysis, beyond_the_paper
from cmrbias_dagster.lib import report
from cmrbias_dagster.lib.analysis import gaps, repeats
from cmrbias_dagster.lib.design.study import StudyDesign, StudyDesignError, parse_study_design
from cmrbias_dagster.lib.design.study_file import load_study_design
from cmrbias_dagster.lib.splits.sampling import draw_test_set, draw_training_split
from cmrbias_dagster.resources import StudyResource
from tests.test_report_outline import exported_repeats_section
from tests.test_sampling import make_manifest
from tests.test_study_design import STUDY_YAML, VALID

REPEATS_YAML = STUDY_YAML.parents[1] / "docs" / "study_repeats.yaml"
RACE_BLACK = {
    "attribute": "race",
    "groups": ["black", "white"],
    "held_attribute": "sex",
    "held_values": ["female", "male"],
}


def design_mapping(repeats: object = None, **experiments: dict) -> dict:
    """VALID with `repeats` (left out when None) and more experiments."""
    mapping = copy.deepcopy(VALID)
    mapping["experiments"].update(experiments)
    if repeats is not None:
        mapping["repeats"] = repeats
    return mapping


# The design: names, order, seeds, R = 1 unchanged, bad values refused.


def test_repeats_are_appended_as_experiments_of_their_own() -> None:
    design = parse_study_design(design_mapping(3, race_black=RACE_BLACK))
    assert design.repeats == 3
    assert design.experiment_names == [
        "sex",
        "race_black",
        "sex_r2",
        "race_black_r2",
        "sex_r3",
        "race_black_r3",
    ]
    third = design.experiment("race_black_r3")
    assert (third.repeat, third.base, third.groups) == (3, "race_black", ("black", "white"))
    assert third.strata == design.experiment("race_black").strata
    assert [design.draw_seed(name) for name in ("sex", "sex_r2", "race_black_r3")] == [
        7,
        1007,
        2007,
    ]


def test_one_repeat_changes_nothing() -> None:
    plain = parse_study_design(design_mapping(race_black=RACE_BLACK))
    assert parse_study_design(design_mapping(1, race_black=RACE_BLACK)) == plain
    assert plain.repeats == 1
    assert [(e.name, e.repeat, e.base) for e in plain.experiments] == [
        ("sex", 1, "sex"),
        ("race_black", 1, "race_black"),
    ]
    assert plain.draw_seed("race_black") == plain.seed


def test_the_main_study_draws_once() -> None:
    design = load_study_design(STUDY_YAML)
    assert design.repeats == 1
    assert all(e.repeat == 1 and e.base == e.name for e in design.experiments)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "field 'repeats' must be at least 1, got 0"),
        (-2, "field 'repeats' must be at least 1, got -2"),
        (1.5, "field 'repeats' must be an integer, got 1.5"),
        ("3", "field 'repeats' must be an integer, got '3'"),
        (True, "field 'repeats' must be an integer, got True"),
    ],
)
def test_bad_repeats_are_refused_naming_the_file(tmp_path: Path, value, message) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(design_mapping(value)))
    with pytest.raises(StudyDesignError, match=message) as error:
        load_study_design(path)
    assert str(error.value).startswith(f"{path}: ")


def test_a_repeat_name_the_file_already_uses_is_refused() -> None:
    mapping = design_mapping(2, sex_r2=VALID["experiments"]["sex"])
    with pytest.raises(StudyDesignError, match=r"'repeats' 2 names repeats \['sex_r2'\]"):
        parse_study_design(mapping, source="study.yaml")
    assert parse_study_design(design_mapping(1, sex_r2=VALID["experiments"]["sex"]))


def test_a_variants_repeat_varies_its_baselines_repeat() -> None:
    variant = {**RACE_BLACK, "mitigation": "oversampling", "varies": "race_black"}
    design = parse_study_design(design_mapping(2, race_black=RACE_BLACK, race_black_over=variant))
    second = design.experiment("race_black_over_r2")
    assert (second.varies, second.base, second.mitigation.strategy) == (
        "race_black_r2",
        "race_black_over",
        "oversampling",
    )
    # Same seed as the baseline's repeat: the variant trains on its baseline's draws.
    assert design.draw_seed("race_black_over_r2") == design.draw_seed("race_black_r2")


def test_the_documented_repeats_design_is_the_main_study_three_times() -> None:
    design, main = load_study_design(REPEATS_YAML), load_study_design(STUDY_YAML)
    assert (design.repeats, design.seed, design.ratios) == (3, main.seed, main.ratios)
    assert design.experiment_names[:3] == main.experiment_names
    assert design.experiment_names[3:] == [
        f"{name}_r{repeat}" for repeat in (2, 3) for name in main.experiment_names
    ]
    assert design.profiles == main.profiles


def test_training_is_seeded_from_the_repeat(tmp_path: Path) -> None:
    study = StudyResource(study_file=str(REPEATS_YAML), profile="tiny", work_dir=str(tmp_path))
    main = StudyResource(study_file=str(STUDY_YAML), profile="tiny", work_dir=str(tmp_path))
    assert main.training_settings().seed == main.training_settings("race_black").seed == 2022
    assert study.training_settings("race_black").seed == 2022
    assert study.training_settings("race_black_r3").seed == 4022
    assert study.training_settings("sex_r2") == replace(main.training_settings(), seed=3022)


# The draws: the same test set for every repeat, new training draws, nested within a repeat.


@pytest.fixture(scope="module")
def repeated() -> StudyDesign:
    return load_study_design(REPEATS_YAML)


def test_repeats_share_the_test_set_but_not_the_training_draws(repeated) -> None:
    manifest = make_manifest(120)
    names = ("race_black", "race_black_r2", "race_black_r3")
    tests = {name: draw_test_set(manifest, repeated.experiment(name), 84, 2022) for name in names}
    ids = {name: set(test["subject_id"]) for name, test in tests.items()}
    assert ids["race_black"] == ids["race_black_r2"] == ids["race_black_r3"]
    # ...and with the experiments of the same strata, as without repeats.
    sex = draw_test_set(manifest, repeated.experiment("sex_r2"), 84, 2022)
    assert set(sex["subject_id"]) == ids["race_black"]

    def training(name: str, ratio: int) -> set[str]:
        split = draw_training_split(
            manifest,
            ids["race_black"],  # the one test set of these strata
            repeated.experiment(name),
            ratio,
            176,
            repeated.draw_seed(name),
        )
        return set(split["subject_id"])

    draws = {name: training(name, 50) for name in names}
    assert len({frozenset(draw) for draw in draws.values()}) == 3
    assert all(not draw & ids["race_black"] for draw in draws.values())
    # Nested across ratios within a repeat (the white subjects of 75 % inside those of 50 %).
    white = set(manifest.filter(pl.col("race") == "white")["subject_id"])
    assert training("race_black_r2", 75) & white <= draws["race_black_r2"] & white
    # Within a repeat, experiments of the same strata still draw the same set at 50 %.
    assert training("sex_r2", 50) == draws["race_black_r2"]


# The summary: medians, spread, per-repeat gaps and the verdict, on planted scores.

PER_GROUP = 25  # test subjects per group; the planted spread is symmetric about the median
SPREAD = np.linspace(-0.02, 0.02, PER_GROUP)


def planted_scores(design: StudyDesign, gaps: dict[str, float], ratios=(0, 50)) -> pl.DataFrame:
    """Overall DSC of the same test subjects for every named experiment: the first group's median
    0.80 + gap/2, the second's 0.80 - gap/2, every subject 0.001 apart within its group."""
    rows = []
    for name, gap in gaps.items():
        first, second = design.experiment(name).groups
        for ratio in ratios:
            for group, centre in ((first, 0.8 + gap / 2), (second, 0.8 - gap / 2)):
                for s, offset in enumerate(SPREAD):
                    rows.append((name, ratio, f"{group}_{s}", group, "female", centre + offset))
    return pl.DataFrame(
        rows,
        schema=["experiment", "ratio", "subject_id", "group", "held", "dsc"],
        orient="row",
    ).with_columns(pl.lit("overall").alias("class"))


def summarise(scores: pl.DataFrame, design: StudyDesign) -> pl.DataFrame:
    """repeat_summary with the two-level gaps it takes its verdicts from."""
    gap_verdicts = gaps.gap_table(scores, design, design.equivalence_margin)
    return repeats.repeat_summary(scores, gap_verdicts, design)


def summary_of(repeats_gaps: tuple[float, ...]) -> dict:
    """The summary row of race_black at ratio 0 with repeat r's gap repeats_gaps[r - 1]."""
    design = parse_study_design(design_mapping(len(repeats_gaps), race_black=RACE_BLACK))
    names = ["race_black", *(f"race_black_r{r}" for r in range(2, len(repeats_gaps) + 1))]
    scores = planted_scores(design, dict(zip(names, repeats_gaps, strict=True)))
    table = summarise(scores, design)
    assert table.schema == pl.Schema(repeats.SCHEMA)
    assert table.select("experiment", "ratio").rows() == [("race_black", 0), ("race_black", 50)]
    return table.row(0, named=True)


def test_medians_and_spread_are_over_the_repeats() -> None:
    row = summary_of((0.04, 0.06, 0.05))
    assert (row["group_a"], row["group_b"], row["repeats"]) == ("black", "white", 3)
    assert row["median_a"] == pytest.approx(0.825)
    assert (row["min_a"], row["max_a"]) == pytest.approx((0.82, 0.83))
    assert row["sd_a"] == pytest.approx(0.005)
    assert row["median_b"] == pytest.approx(0.775)
    assert (row["min_b"], row["max_b"], row["sd_b"]) == pytest.approx((0.77, 0.78, 0.005))
    assert row["estimate"] == pytest.approx(0.05)
    assert row["gaps"] == "+0.0400, +0.0600, +0.0500"


def test_a_gap_every_repeat_finds_in_one_direction_is_established() -> None:
    row = summary_of((0.04, 0.045, 0.05))
    assert row["verdict"] == "established" and row["ci_low"] > 0


def test_a_gap_that_flips_sign_between_repeats_is_not_established() -> None:
    row = summary_of((0.04, -0.04, 0.05))
    assert row["verdict"] == "not established" and row["ci_low"] < 0 < row["ci_high"]


def test_a_gap_too_variable_across_repeats_is_not_established() -> None:
    """Every repeat's gap is far from 0, but they disagree: the model part of the variance,
    estimated from three draws, keeps 0 inside the interval."""
    row = summary_of((0.04, 0.2, 0.04))
    assert row["verdict"] == "not established" and row["ci_low"] < 0


def test_repeats_that_agree_on_no_gap_do_not_establish_one() -> None:
    row = summary_of((0.0, 0.0, 0.0))
    assert row["verdict"] != "established" and row["ci_low"] < 0 < row["ci_high"]


def test_one_draw_still_summarises_and_says_so() -> None:
    row = summary_of((0.04,))
    assert (row["repeats"], row["median_a"], row["gaps"]) == (1, pytest.approx(0.82), "+0.0400")
    assert [row[f"{stat}_a"] for stat in ("min", "max", "sd")] == [None, None, None]
    assert row["verdict"].endswith("(one training draw: training noise not included)")


def test_a_repeat_not_yet_evaluated_gives_a_verdict_on_those_evaluated() -> None:
    design = parse_study_design(design_mapping(3, race_black=RACE_BLACK))
    scores = planted_scores(design, {"race_black": 0.04, "race_black_r2": 0.05})
    table = summarise(scores, design)
    assert table["repeats"].unique().to_list() == [2]
    assert table["estimate"].to_list() == pytest.approx([0.045, 0.045])


def test_nothing_evaluated_gives_an_empty_table_and_no_section() -> None:
    design = parse_study_design(design_mapping(2))
    empty = planted_scores(design, {})
    table = summarise(empty, design)
    assert table.is_empty() and table.schema == pl.Schema(repeats.SCHEMA)
    assert report.repeats_section(table, design) is None


def test_the_report_section_shows_the_summary_and_the_spread() -> None:
    design = parse_study_design(design_mapping(3, race_black=RACE_BLACK))
    gaps = {"race_black": 0.04, "race_black_r2": 0.045, "race_black_r3": 0.05}
    table = summarise(planted_scores(design, gaps), design)
    section = report.repeats_section(table, design)
    assert section is not None and section.heading == "Repeated draws"
    (caption, summary), (_, spread) = section.tables
    assert caption == "Summary" and summary.columns == list(repeats.SUMMARY)
    assert summary["verdict"].to_list() == ["established", "established"]
    assert "sd_a" in spread.columns and "3 time(s)" in section.text
    # A table of another design's experiments (a stale CSV) shows nothing.
    other = parse_study_design(design_mapping(3))
    assert report.repeats_section(table, other) is None


def test_the_asset_exports_the_summary_and_the_report_reads_it(tmp_path: Path) -> None:
    design_file = tmp_path / "study.yaml"
    design_file.write_text(yaml.safe_dump(design_mapping(3, race_black=RACE_BLACK)))
    study = StudyResource(study_file=str(design_file), work_dir=str(tmp_path / "work"))
    gaps = {"race_black": 0.04, "race_black_r2": -0.04, "race_black_r3": 0.05}
    scores = planted_scores(study.design(), gaps)

    @dg.asset(name="subject_scores")
    def planted() -> pl.DataFrame:
        return scores

    assets = [planted, analysis.gap_verdicts, beyond_the_paper.repeat_summary]
    result = dg.materialize(assets, resources={"study": study})
    metadata = result.asset_materializations_for_node("repeat_summary")[0].metadata
    assert metadata["rows"].value == 2
    assert Path(metadata["csv"].value).is_file()
    assert "not established" in metadata["summary"].value
    (section,) = exported_repeats_section(study)
    assert section.tables[0][1]["verdict"].to_list() == ["not established"] * 2
    assert section.tables[1][1]["sd_a"].to_list() == pytest.approx(
        [np.std([0.82, 0.78, 0.825], ddof=1)] * 2
    )


def test_the_code_location_shows_the_repeats_as_experiments(tmp_path: Path) -> None:
    """Through Dagster, with docs/study_repeats.yaml: the repeats are partitions, the test set
    is shared and the training split of a repeat is its own draw."""
    drawn = subprocess.run(
        [sys.executable, "-c", DRAW_SCRIPT, str(tmp_path)],
        env={**os.environ, "CMRBIAS_STUDY_FILE": str(REPEATS_YAML), "CMRBIAS_PROFILE": "tiny"},
        cwd=STUDY_YAML.parents[1],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    result = json.loads(drawn.stdout.strip().splitlines()[-1])
    assert len(result["experiments"]) == 9 and "race_black_r3" in result["experiments"]
    assert result["test_set"]["race_black"] == result["test_set"]["race_black_r2"]
    train = result["training_split"]
    assert train["race_black"] != train["race_black_r2"]
    assert len(train["race_black_r2"]) == 8


DRAW_SCRIPT = """
import json, os, sys
from pathlib import Path
import dagster as dg
from cmrbias_dagster.assets import cohort, splits
from cmrbias_dagster.partitions import experiment_partitions
from cmrbias_dagster.resources import build_resources
from tests.materialize import materialize_manifest
from tests.toy_cohort import demographics_rows, write_toy_cohort

tmp = Path(sys.argv[1])
assets = [*dg.load_assets_from_modules([cohort, splits])]
root = write_toy_cohort(tmp / "raw", demographics_rows(7))
resources = build_resources(profile="tiny", work_dir=tmp / "work", cohort_root=root,
                            study_file=Path(os.environ["CMRBIAS_STUDY_FILE"]))
instance = dg.DagsterInstance.ephemeral()
materialize_manifest(assets, resources, instance)
result = {"experiments": experiment_partitions.get_partition_keys(), "test_set": {},
          "training_split": {}}
for name in ("race_black", "race_black_r2"):
    tests = dg.materialize(assets, selection=["test_set"], partition_key=name,
                           resources=resources, instance=instance)
    result["test_set"][name] = sorted(tests.output_for_node("test_set")["subject_id"])
    split = dg.materialize(assets, selection=["training_split", "cv_folds"],
                           partition_key=f"{name}|50", resources=resources, instance=instance)
    assert all(check.passed for check in split.get_asset_check_evaluations())
    result["training_split"][name] = sorted(split.output_for_node("training_split")["subject_id"])
print(json.dumps(result))
"""
