"""The tiny design plus one variant of race_black, materialised in a fresh interpreter started with
CMRBIAS_STUDY_FILE naming it (partitions follow the study file the code location loads, as for
`make ui`): shared by the mitigation tests that need a variant experiment's own partitions."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from cmrbias_dagster.resources import DEFAULT_STUDY_FILE, StudyResource
from cmrbias_dagster.resources.study import PROJECT_ROOT


def run_variant_design(
    variant: str, fields: dict, script: str, cohort: Path, tmp: Path, *args: str
) -> tuple[StudyResource, object]:
    """Write the tiny design with `variant` (race_black plus `fields`) to `tmp`, run `script`
    with the study file, the cohort, the work folder and `args`; the study and the script's last
    line of output, parsed as JSON."""
    design = yaml.safe_load(DEFAULT_STUDY_FILE.read_text())
    design["experiments"][variant] = {**design["experiments"]["race_black"], **fields}
    study_file = tmp / "study.yaml"
    study_file.write_text(yaml.safe_dump(design, sort_keys=False))
    run = subprocess.run(
        [sys.executable, "-c", script, str(study_file), str(cohort), str(tmp / "work"), *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "CMRBIAS_STUDY_FILE": str(study_file)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    study = StudyResource(study_file=str(study_file), profile="tiny", work_dir=str(tmp / "work"))
    return study, json.loads(run.stdout.splitlines()[-1])
