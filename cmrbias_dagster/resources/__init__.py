"""Typed resources, and the one function that wires them for a profile."""

import os
from pathlib import Path

from cmrbias_dagster.lib.design.parallelism import resolve_parallel_runs
from cmrbias_dagster.resources.cohort_folder import CohortResource
from cmrbias_dagster.resources.duckdb_tables import DuckDBPolarsTables
from cmrbias_dagster.resources.study import (
    DEFAULT_STUDY_FILE,
    DEFAULT_WORK_DIR,
    PROJECT_ROOT,
    StudyResource,
)
from cmrbias_dagster.resources.training_device import ALLOW_CPU_VARIABLE, TrainingResource

DEFAULT_RAW_DIR = PROJECT_ROOT / "data" / "raw"


def default_cohort_root(profile: str) -> Path:
    """The embedded synthetic cohort for a profile."""
    return DEFAULT_RAW_DIR / f"synthetic_{profile}"


def cohort_from_environment(root: Path) -> CohortResource:
    """The cohort at `root`, its layout, information file, demographics format and required
    fields taken from CMRBIAS_COHORT_LAYOUT, CMRBIAS_COHORT_INFO_FILE, CMRBIAS_COHORT_FORMAT and
    CMRBIAS_COHORT_REQUIRED (comma-separated) when set."""
    required = os.environ.get("CMRBIAS_COHORT_REQUIRED", "")
    return CohortResource(
        root=str(root),
        layout=os.environ.get("CMRBIAS_COHORT_LAYOUT", "ukbb"),
        demographics_file=os.environ.get("CMRBIAS_COHORT_INFO_FILE", ""),
        demographics_format=os.environ.get("CMRBIAS_COHORT_FORMAT", "table"),
        required_fields=[field.strip() for field in required.split(",") if field.strip()],
    )


# Set by the study runner (study_runner.PARALLEL_RUNS_VARIABLE): the `auto` figure it resolved
# once, so that its workers' CPU slots do not follow the memory its runs take meanwhile.
PARALLEL_RUNS_VARIABLE = "CMRBIAS_PARALLEL_RUNS"


def build_resources(
    profile: str = "quick",
    work_dir: Path = DEFAULT_WORK_DIR,
    cohort_root: Path | None = None,
    study_file: Path = DEFAULT_STUDY_FILE,
    device: str = "auto",
) -> dict[str, object]:
    """Resources for one profile: study design, cohort, training device and the DuckDB file.
    On a CPU-only machine the profile's `parallel_runs` (a number, or `auto` from this machine)
    nnU-Net steps run at once; the paper profile refuses to train there unless
    CMRBIAS_ALLOW_CPU_TRAINING=1."""
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    study = StudyResource(study_file=str(study_file), profile=profile, work_dir=str(work_dir))
    return {
        "study": study,
        "cohort": cohort_from_environment(cohort_root or default_cohort_root(profile)),
        "training": TrainingResource(
            device=device,
            cpu_slots=resolve_parallel_runs(
                os.environ.get(PARALLEL_RUNS_VARIABLE) or study.settings().parallel_runs
            ).runs,
            profile=profile,
            allow_cpu_for_paper=os.environ.get(ALLOW_CPU_VARIABLE, "") == "1",
        ),
        "io_manager": DuckDBPolarsTables(
            database=str(Path(work_dir) / f"cmrbias_{profile}.duckdb"), schema="cmrbias"
        ),
    }


__all__ = [
    "CohortResource",
    "StudyResource",
    "TrainingResource",
    "PARALLEL_RUNS_VARIABLE",
    "build_resources",
    "default_cohort_root",
]
