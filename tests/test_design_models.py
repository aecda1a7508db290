"""study.yaml is read once per process, and its pydantic models refuse bad values in the
design's own words (file, profile, block, key, value), never in pydantic's."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cmrbias_dagster.lib.design import study_file
from cmrbias_dagster.lib.design.study import StudyDesignError, parse_study_design
from cmrbias_dagster.lib.design.study_file import (
    DEFAULT_STUDY_FILE,
    load_study_design,
    load_synthetic_cohort,
)

REPO = Path(__file__).resolve().parents[1]
STUDY = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())

# Imports the code location with CMRBIAS_STUDY_FILE relative to the repository, then asks the
# resource and the CLI for the design under other spellings of the same file.
COUNT_READS = """
import yaml
reads = []
real_load = yaml.safe_load
def counting_load(stream):
    reads.append(getattr(stream, "name", "?"))
    return real_load(stream)
yaml.safe_load = counting_load
from cmrbias_dagster import cli, definitions
from cmrbias_dagster.lib.design.study_file import DEFAULT_STUDY_FILE
study = definitions.defs.resources["study"]
study.design(); study.settings(); study.training_settings("sex")
cli.cohort_spec_from_study(DEFAULT_STUDY_FILE, "tiny")
cli.cohort_spec_from_study(DEFAULT_STUDY_FILE.parent / ".." / "data" / "study.yaml", "tiny")
print(sorted(set(reads)), len([r for r in reads if r.endswith("study.yaml")]))
"""


def test_the_code_location_resource_and_cli_read_study_yaml_once() -> None:
    run = subprocess.run(
        [sys.executable, "-c", COUNT_READS],
        cwd=REPO,
        env={**os.environ, "CMRBIAS_STUDY_FILE": "data/study.yaml", "CMRBIAS_PROFILE": "tiny"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    files, reads = run.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert files == repr([str(DEFAULT_STUDY_FILE)])
    assert reads == "1"


def test_the_cohort_block_and_the_design_share_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(DEFAULT_STUDY_FILE.read_text())
    reads = []
    real_load = yaml.safe_load
    monkeypatch.setattr(
        study_file.yaml, "safe_load", lambda stream: reads.append(1) or real_load(stream)
    )
    settings, seed = load_synthetic_cohort(path, "tiny")
    design = load_study_design(tmp_path / ".." / tmp_path.name / "study.yaml")
    assert (settings, seed) == (design.profile("tiny").synthetic_cohort, design.seed)
    assert load_study_design(path) is design
    assert len(reads) == 1


def _with(path: tuple, value: object) -> dict:
    mapping = copy.deepcopy(STUDY)
    *parents, last = path
    target = mapping
    for key in parents:
        target = target[key]
    target[last] = value
    return mapping


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("profiles", "quick", "training", "optimizer"),
            "adam",
            "study.yaml: profile 'quick': block 'training': training setting 'optimizer' must be "
            "one of ('sgd', 'adamw'), got 'adam'",
        ),
        (
            ("profiles", "paper", "convergence", "window"),
            1.5,
            "study.yaml: profile 'paper': block 'convergence': convergence setting 'window' must "
            "lie in (0, 1], got 1.5",
        ),
        (
            ("profiles", "tiny", "prediction", "tile_step_size"),
            0,
            "study.yaml: profile 'tiny': block 'prediction': prediction setting 'tile_step_size' "
            "must lie in (0, 1], got 0",
        ),
        (
            ("profiles", "quick", "nnunet", "features_per_stage"),
            [8, -16],
            "study.yaml: profile 'quick': block 'nnunet': nnunet setting 'features_per_stage' "
            "must be positive, got [8, -16]",
        ),
        (
            ("profiles", "tiny", "synthetic_cohort", "matrix"),
            48.5,
            "study.yaml: profile 'tiny': block 'synthetic_cohort': synthetic_cohort setting "
            "'matrix' must be an integer, got 48.5",
        ),
        (
            ("profiles", "quick", "folds"),
            1,
            "study.yaml: profile 'quick': field 'folds' must be at least 2, got 1",
        ),
        (
            ("experiments", "sex", "mitigation"),
            {"strategy": "group-dro"},
            "study.yaml: experiment 'sex': block 'mitigation': key 'strategy' must be one of "
            "none, oversampling",
        ),
        (
            ("seeds",),
            1,
            "study.yaml: unknown field(s) ['seeds']; known: seed, ratios, experiments, profiles",
        ),
        (
            ("profiles", "quick", "name"),
            "fast",
            "study.yaml: profile 'quick': unknown field(s) ['name']; known: train_size,",
        ),
    ],
)
def test_a_bound_or_choice_violation_names_file_profile_block_and_key(
    path: tuple, value: object, message: str
) -> None:
    with pytest.raises(StudyDesignError) as error:
        parse_study_design(_with(path, value), source="study.yaml")
    assert str(error.value).startswith(message)
    assert "pydantic" not in str(error.value) and "Input should" not in str(error.value)
