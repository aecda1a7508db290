"""The study design, the active profile, and where each partition's files live.

One owner for these facts: assets ask the study resource for their partition once, as a
`StudyPartition` (lib/design/partition.py, the key's one codec), and where its nnU-Net dataset,
predictions, figures and report are.
"""

from pathlib import Path

import dagster as dg

from cmrbias_dagster.lib.design.partition import (
    StudyPartition,
    seeded_training,
    study_partition,
    study_partitions,
)
from cmrbias_dagster.lib.design.profile import Profile
from cmrbias_dagster.lib.design.settings import TrainingSettings
from cmrbias_dagster.lib.design.study import StudyDesign
from cmrbias_dagster.lib.design.study_file import DEFAULT_STUDY_FILE, load_study_design
from cmrbias_dagster.lib.nnunet.dataset import NnunetEnvironment

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORK_DIR = PROJECT_ROOT / "data" / "work"


class StudyResource(dg.ConfigurableResource):
    """Which study file and profile (`quick` on CPU, `paper` on GPU) a run uses, and where the
    profile's outputs live (`work_dir/<profile>/...`)."""

    study_file: str = str(DEFAULT_STUDY_FILE)
    profile: str = "quick"
    work_dir: str = str(DEFAULT_WORK_DIR)

    def design(self) -> StudyDesign:
        """The study design, read once per process (again only when the file changes)."""
        return load_study_design(Path(self.study_file))

    def settings(self) -> Profile:
        """The active profile of the design: its sizes, folds and nnU-Net, training, convergence
        and prediction settings."""
        return self.design().profile(self.profile)

    def training_settings(self, experiment: str | None = None) -> TrainingSettings:
        """The profile's training block, seeded for `experiment` (`seeded_training`)."""
        return seeded_training(self.design(), self.settings(), experiment)

    def output_dir(self, *parts: str) -> Path:
        """A folder under the profile's work directory, created on first use."""
        path = Path(self.work_dir, self.profile, *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def partition(self, partition_key: str) -> StudyPartition:
        """The study partition of a key `<experiment>|<ratio>` (`study_partition`)."""
        return study_partition(self.design(), self.settings(), partition_key)

    def partitions(self) -> list[StudyPartition]:
        """Every experiment x ratio of the design."""
        return study_partitions(self.design(), self.settings())

    def nnunet_environment(self) -> NnunetEnvironment:
        """The profile's nnU-Net folders under work_dir/<profile>/nnunet/."""
        base = self.output_dir("nnunet")
        return NnunetEnvironment(base / "raw", base / "preprocessed", base / "results")

    def predictions_folder(self, partition: StudyPartition) -> Path:
        """A partition's ensemble predictions: work_dir/<profile>/predictions/<dataset>/."""
        return self.output_dir("predictions") / partition.dataset

    def tables_folder(self) -> Path:
        """Where the analysis tables are exported as CSV and LaTeX."""
        return self.output_dir("tables")

    def figure_file(self, name: str) -> Path:
        """A figure's PNG: work_dir/<profile>/figures/<name>.png."""
        return self.output_dir("figures") / f"{name}.png"

    def report_file(self) -> Path:
        """The study report: work_dir/<profile>/report/study_report.html."""
        return self.output_dir("report") / "study_report.html"
